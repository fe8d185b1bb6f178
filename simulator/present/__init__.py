"""Presentation: the HTML reports and how KPIs print for people.

:mod:`.kpis` holds the one way a KPI prints (unit, format, the headline KPIs, the
rows of a table); :mod:`.report` renders the self-contained HTML pages of a run, a
replicated run, a comparison and a sweep. This room reads results and experiments;
nothing below it imports it.
"""

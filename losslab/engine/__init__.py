"""The widget engine: describe a figure, compute its curves with torch, draw it live.

``widgets`` holds the description (``figure``, ``Panel``, ``Series``, controls) and
``loss_explorer``; ``encoding`` packs curve grids compactly for the browser; ``plots`` draws
the static matplotlib snapshot; ``static/`` holds the anywidget front end (the one renderer
of a figure) and its CSS; ``first_paint`` runs that front end under Node at build time.
Nothing here knows about a chapter.
"""

"""The widget engine: describe a figure, compute its curves with torch, draw it live.

``widgets`` holds the description (``figure``, ``Panel``, ``Series``, controls) and
``loss_explorer``; ``encoding`` packs curve grids compactly for the browser; ``plots`` draws
the static matplotlib snapshot; ``static/`` holds the anywidget front end and its CSS.
Nothing here knows about a chapter.
"""

"""The figures of each chapter, one module per chapter, named like its file.

``chapters/<name>.md`` draws its widgets from ``losslab.figures.<name>``; a chapter imports it
as ``from losslab.figures import <name> as figures``.
"""

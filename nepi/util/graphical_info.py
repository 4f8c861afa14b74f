"""Position and size of an element in a design GUI; persisted, never interpreted."""


class GraphicalInfo:
    def __init__(self, x: float = 0.0, y: float = 0.0,
                 width: float = 0.0, height: float = 0.0) -> None:
        self.x = x
        self.y = y
        self.width = width
        self.height = height

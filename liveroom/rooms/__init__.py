"""Rooms: the stage model (pure), its views, the service and the stores."""

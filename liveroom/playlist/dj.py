"""DJ mode: the room plays its playlist into its own audio.

When the host sets ``playlist_output`` to ``room``, the current uploaded item is decoded on the
server and mixed into the program mix, so every listener hears it with no player of their own.
The playback state stays the one in ``playlist:state``: this only keeps the room's deck on what
the playlist says, after every playlist change and every stage change (the setting may flip).
"""

from __future__ import annotations

from pathlib import Path

from liveroom.media.deck import MusicCue
from liveroom.media.engine import MediaEngine
from liveroom.playlist.model import Playlist, room_music
from liveroom.rooms.stage import PlaylistOutput, RoomState


def plays_in_the_room(state: RoomState) -> bool:
    return state.settings.playlist_output is PlaylistOutput.ROOM


class DjBooth:
    def __init__(self, engine: MediaEngine, media_dir: Path) -> None:
        self._engine = engine
        self._dir = media_dir

    def follow(self, state: RoomState, playlist: Playlist) -> None:
        music = room_music(playlist) if plays_in_the_room(state) else None
        cue = None
        if music is not None:
            path = self._dir / music.media_id
            cue = MusicCue(music.item_id, path, music.position_s, music.at)
        self._engine.play(state.id, cue)

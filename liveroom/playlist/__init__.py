"""Shared playlists: a room's queue and one server-authoritative playback everyone follows."""

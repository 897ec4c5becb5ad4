"""Audio: the room mixer, WebRTC sessions and (later) HLS, behind a narrow engine interface."""

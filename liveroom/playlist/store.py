"""Playlists in SQL: items in their order and the playback as of its last transition, written
before each change is acknowledged. Only what changed is written."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveroom.db.models import MediaRow, PlaybackRow, PlaylistItemRow
from liveroom.playlist.model import Item, Playback, Playlist
from liveroom.rooms.stage import UserInfo


def _item_row(room_id: str, position: int, item: Item) -> PlaylistItemRow:
    return PlaylistItemRow(
        id=item.id,
        room_id=room_id,
        position=position,
        title=item.title,
        url=item.url,
        media_id=item.media_id,
        duration_s=item.duration_s,
        added_by_id=item.added_by.id,
        added_by_name=item.added_by.name,
        added_by_verified=item.added_by.verified,
        approved=item.approved,
    )


def _item(row: PlaylistItemRow) -> Item:
    return Item(
        id=row.id,
        title=row.title,
        added_by=UserInfo(row.added_by_id, row.added_by_name, row.added_by_verified),
        url=row.url,
        media_id=row.media_id,
        duration_s=row.duration_s,
        approved=row.approved,
    )


class SqlPlaylistStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def load(self, room_id: str) -> Playlist:
        """The room's playlist as saved; playback paused where its last transition left it."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(PlaylistItemRow)
                    .where(PlaylistItemRow.room_id == room_id)
                    .order_by(PlaylistItemRow.position)
                )
            ).all()
            state = await session.get(PlaybackRow, room_id)
        items = tuple(_item(row) for row in rows)
        if state is None:
            return Playlist(room_id, items)
        playback = Playback(state.item_id, state.position_s, False, 1.0, state.at)
        return Playlist(room_id, items, playback, repeat=state.repeat)

    async def write(self, old: Playlist, new: Playlist) -> None:
        """Commit the difference between ``old`` and ``new`` in one transaction."""
        before = {item.id: (n, item) for n, item in enumerate(old.items)}
        async with self._sessions.begin() as session:
            gone = [i for i in before if i not in {item.id for item in new.items}]
            if gone:
                await session.execute(delete(PlaylistItemRow).where(PlaylistItemRow.id.in_(gone)))
            for n, item in enumerate(new.items):
                if before.get(item.id) != (n, item):
                    await session.merge(_item_row(new.room_id, n, item))
            if new.playback != old.playback or new.repeat != old.repeat:
                p = new.playback
                await session.merge(
                    PlaybackRow(
                        room_id=new.room_id,
                        item_id=p.item_id,
                        position_s=p.position_s,
                        playing=p.playing,
                        rate=p.rate,
                        at=p.at,
                        repeat=new.repeat,
                    )
                )

    async def room_of_item(self, item_id: str) -> str | None:
        async with self._sessions() as session:
            room_id: str | None = await session.scalar(
                select(PlaylistItemRow.room_id).where(PlaylistItemRow.id == item_id)
            )
        return room_id

    async def add_media(self, row: MediaRow) -> None:
        async with self._sessions.begin() as session:
            session.add(row)

    async def media_bytes(self, room_id: str | None) -> int:
        """Bytes of uploads kept for a room (``None``: for every room)."""
        query = select(func.coalesce(func.sum(MediaRow.size), 0))
        if room_id is not None:
            query = query.where(MediaRow.room_id == room_id)
        async with self._sessions() as session:
            total = await session.scalar(query)
        return int(total or 0)

    async def media(self, media_id: str) -> MediaRow | None:
        async with self._sessions() as session:
            return await session.get(MediaRow, media_id)

"""Tables. Times are epoch milliseconds (BigInteger), as everywhere in the protocol."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from liveroom.db.base import Base


class UserRow(Base):
    """Everyone the server has seen, as their latest token described them."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    guest: Mapped[bool] = mapped_column(Boolean, default=False)
    market: Mapped[str | None] = mapped_column(String(2), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)

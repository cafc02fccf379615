-- The file a message menu (Animate image, Edit video) was used on, kept between the menu and
-- its form's submission: the menu's interaction carries the message's attachments, a later
-- fetch of another member's message may not (without the Message Content intent, Discord
-- leaves them out). Deleted on submission; a form never submitted is dropped after a day.
CREATE TABLE pending_forms (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a form id is one pick
    guild_id       INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    channel_id     INTEGER NOT NULL,
    message_id     INTEGER NOT NULL,
    attachment_id  INTEGER,
    url            TEXT    NOT NULL,
    filename       TEXT    NOT NULL,
    content_type   TEXT,
    size           INTEGER NOT NULL,
    created_at     REAL    NOT NULL
);

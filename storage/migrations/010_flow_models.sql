-- A server's own model for a flow that picks one itself: "animate" (Animate image, and Extend
-- on a model that takes no first frame) and "edit" (Edit video). None: the bot-wide default.
CREATE TABLE flow_models (
    guild_id  INTEGER NOT NULL,
    flow      TEXT    NOT NULL CHECK (flow IN ('animate', 'edit')),
    model_id  TEXT    NOT NULL,
    PRIMARY KEY (guild_id, flow)
);

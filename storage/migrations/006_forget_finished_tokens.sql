-- An interaction token lets anyone holding it edit the bot's message for 15 minutes. Once a
-- job's end is shown the bot never needs it again, and the engine now blanks it then; this
-- blanks the tokens that finished jobs kept before.
UPDATE jobs SET interaction_token = ''
WHERE state IN ('delivered', 'failed', 'timed_out', 'cancelled') AND announced = 1;

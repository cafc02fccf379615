-- The requester's language (bot.i18n's catalog name: en, de, fr, es, pt-BR, ja), so the job's
-- message, edited later by the engine outside any interaction, speaks it. Older jobs: English.
ALTER TABLE jobs ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
-- The bot's own failure reason as a catalog key and its placeholders (JSON), shown in the job's
-- language; failure_reason keeps the English words (logs, /videos of older versions). NULL:
-- only failure_reason (Together's own words, or a job failed before this column).
ALTER TABLE jobs ADD COLUMN failure_text TEXT;

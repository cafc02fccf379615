-- The requester's language (bot.i18n's catalog name: en, de, fr, es, pt-BR, ja), so the job's
-- message, edited later by the engine outside any interaction, speaks it. Older jobs: English.
ALTER TABLE jobs ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';

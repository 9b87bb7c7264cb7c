-- WhatsApp, Zalo OA, Telegram and Shopee (issue 5): WhatsApp message templates and cost metering,
-- reachability of channel identities, and the indexes webhooks find their inbox by.
-- Registered as version 5, like SQLite's 0005_channels.sql. Every list query has an index.

-- WhatsApp message templates as last synced from the provider (status and category are also
-- updated by the template webhooks). The composer lists them by inbox: the primary key serves
-- that query in (name, language) order.
CREATE TABLE whatsapp_templates (
    inbox_id          TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    name              TEXT COLLATE "C" NOT NULL,
    language          TEXT COLLATE "C" NOT NULL,
    template_id       TEXT COLLATE "C",
    category          TEXT COLLATE "C" NOT NULL,
    status            TEXT COLLATE "C" NOT NULL,
    components        TEXT COLLATE "C" NOT NULL,
    parameter_format  TEXT COLLATE "C" NOT NULL,
    synced_at         BIGINT NOT NULL,
    PRIMARY KEY (inbox_id, name, language)
);
-- template webhooks name the template by its provider id
CREATE INDEX whatsapp_templates_id ON whatsapp_templates (template_id);

-- What every WhatsApp customer message and delivered business message opened or cost
-- (core::billing), one row per event; event_key makes metering idempotent.
CREATE TABLE whatsapp_usage (
    id                TEXT COLLATE "C" PRIMARY KEY,
    inbox_id          TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    business_id       TEXT COLLATE "C" NOT NULL,
    user_id           TEXT COLLATE "C" NOT NULL,
    event_key         TEXT COLLATE "C" NOT NULL,
    message_id        TEXT COLLATE "C",
    at                BIGINT NOT NULL,
    month             TEXT COLLATE "C" NOT NULL,
    model             TEXT COLLATE "C" NOT NULL,
    kind              TEXT COLLATE "C" NOT NULL,
    category          TEXT COLLATE "C" NOT NULL,
    billable          BIGINT NOT NULL,
    free_reason       TEXT COLLATE "C",
    until             BIGINT,
    market            TEXT COLLATE "C" NOT NULL,
    cost_micros       BIGINT NOT NULL,
    unpriced          BIGINT NOT NULL,
    entry_point       BIGINT NOT NULL,
    provider_pricing  TEXT COLLATE "C"
);
CREATE UNIQUE INDEX whatsapp_usage_event ON whatsapp_usage (inbox_id, event_key);
-- a customer's recent rows (their meter state)
CREATE INDEX whatsapp_usage_user ON whatsapp_usage (business_id, user_id, at);
-- the month's free-tier counters and the usage report
CREATE INDEX whatsapp_usage_business_month ON whatsapp_usage (business_id, month, kind, category);
CREATE INDEX whatsapp_usage_inbox_month ON whatsapp_usage (inbox_id, month, kind, category);
CREATE INDEX whatsapp_usage_month ON whatsapp_usage (month, at);

-- A channel identity that cannot be reached now (blocked the bot, unfollowed the OA); cleared
-- when the customer writes again.
CREATE TABLE channel_reachability (
    inbox_id     TEXT COLLATE "C" NOT NULL REFERENCES inboxes(id),
    external_id  TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (inbox_id, external_id)
);

-- webhooks find their inbox by the number / Official Account / shop in the settings
CREATE INDEX inboxes_phone_number_id ON inboxes (channel, (settings::json ->> 'phone_number_id'));
CREATE INDEX inboxes_waba_id ON inboxes (channel, (settings::json ->> 'waba_id'));
CREATE INDEX inboxes_oa_id ON inboxes (channel, (settings::json ->> 'oa_id'));
CREATE INDEX inboxes_shop_id ON inboxes (channel, (settings::json ->> 'shop_id'));

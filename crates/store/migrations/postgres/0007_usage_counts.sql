-- The month's free-tier use, kept as counters next to the rows they count (see store/src/metering.rs):
-- scope `business:<waba id>` counts service conversations, `inbox:<inbox id>` service messages,
-- each only while they count against the free tier (free_reason NULL or 'free_tier').
CREATE TABLE whatsapp_usage_counts (
    scope  TEXT COLLATE "C" NOT NULL,
    month  TEXT COLLATE "C" NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (scope, month)
);
INSERT INTO whatsapp_usage_counts (scope, month, n)
SELECT 'business:' || business_id, month, COUNT(*) FROM whatsapp_usage
WHERE kind = 'conversation_opened' AND category = 'service' AND (free_reason IS NULL OR free_reason = 'free_tier')
GROUP BY business_id, month;
INSERT INTO whatsapp_usage_counts (scope, month, n)
SELECT 'inbox:' || inbox_id, month, COUNT(*) FROM whatsapp_usage
WHERE kind = 'message' AND category = 'service' AND (free_reason IS NULL OR free_reason = 'free_tier')
GROUP BY inbox_id, month;

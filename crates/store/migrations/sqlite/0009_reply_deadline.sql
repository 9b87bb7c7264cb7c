-- The reply deadline (see core/src/timers.rs, docs/routing.md):
-- when it was switched on, so it watches only customer messages from then on (NULL: rules saved
-- before this was recorded — it watches every message, as it did);
ALTER TABLE routing_rules ADD COLUMN reply_sla_since INTEGER;
-- and who transferred a conversation away (until it is resolved), so routing never hands it back.
ALTER TABLE conversations ADD COLUMN handed_over_by TEXT REFERENCES agents(id);

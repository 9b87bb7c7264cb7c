//! WhatsApp, Zalo OA, Telegram and Shopee, written once: delivery statuses inside the channel
//! group commit, inbox lookups by account, identity links, reachability, WhatsApp templates and
//! cost metering. What SQLite gets from its single writer, PostgreSQL gets from locks: metering
//! takes transaction-scoped advisory locks on the business and the inbox (the month's free tier is
//! counted exactly when several nodes meter at once), a status locks its message row (statuses
//! only move forward), settings are replaced by a compare-and-set `UPDATE … WHERE`.

use crate::meta::{
    edit_meta, flush, identity_contact, inbox_by_setting, lock_message, message_by_provider,
    workspace_of,
};
use crate::metering;
use crate::provider::*;
use crate::rows::*;
use crate::sql::{
    Arg, Conn, Db, Keys, RowRead, Setting, commit, id_strings, json_text, q, q_owned, retried,
};
use crate::writes::forget_accounts;
use crate::*;
use switchboard_core::billing::{Charge, Tariff};
use switchboard_core::ingest::MetaEdit;
use tracing::instrument;

/// One metering transaction. The advisory locks on the business (its conversations, its
/// customers' state) and the inbox (its messages, its event keys) are taken before anything is
/// read, so two nodes metering for one business count the free tier one after the other, and
/// an event metered twice at once is written once.
async fn meter_tx<D: Db>(d: &D, events: &[MeterEvent], tariff: &Tariff) -> Result<Vec<Charge>> {
    let mut tx = d.begin().await?;
    tx.lock_keys(
        events
            .iter()
            .flat_map(|e| {
                [
                    format!("meter:business:{}", e.business_id),
                    format!("meter:inbox:{}", e.inbox_id),
                ]
            })
            .collect(),
    )
    .await?;
    let out = meter_batch(&mut *tx, events, tariff).await?;
    commit(d, tx, &mut []).await?;
    Ok(out)
}

#[async_trait]
impl<D: Db> BillingStore for D {
    #[instrument(skip_all)]
    async fn meter_whatsapp_many(
        &self,
        events: &[MeterEvent],
        tariff: &Tariff,
    ) -> Result<Vec<Charge>> {
        retried(move || meter_tx(self, events, tariff)).await
    }

    #[instrument(skip_all)]
    async fn whatsapp_usage(
        &self,
        month: &str,
        inboxes: Option<&[InboxId]>,
    ) -> Result<Vec<Charge>> {
        let rows = match inboxes {
            None => {
                q("SELECT * FROM whatsapp_usage WHERE month = $1 ORDER BY at, id")
                    .bind(month)
                    .fetch_all(&mut *self.read().await?)
                    .await?
            }
            Some(ids) => {
                q(
                    "SELECT * FROM whatsapp_usage WHERE month = $1 AND inbox_id = ANY($2) ORDER BY at, id",
                )
                .bind(month)
                .bind(id_strings(ids))
                .fetch_all(&mut *self.read().await?)
                .await?
            }
        };
        rows.iter().map(charge_row).collect()
    }
}

async fn merge_message_meta_tx<D: Db>(
    d: &D,
    id: MessageId,
    patch: &serde_json::Value,
    now: Timestamp,
) -> Result<()> {
    let mut tx = d.begin().await?;
    // The message row is held until commit: two merges on two nodes do not lose each other's
    // keys (read, merge, write of the extras happen one after the other).
    let Some(m) = lock_message(&mut *tx, id).await? else {
        return Err(StoreError::NotFound);
    };
    let mut drafts = Vec::new();
    let patch = patch.as_object().cloned().unwrap_or_default();
    edit_meta(&mut *tx, &m, now, &mut drafts, MetaEdit::Merge(patch)).await?;
    let ws = workspace_of(&mut *tx, m.conversation_id).await?;
    let mut events = Vec::new();
    flush(ws, drafts, now, &mut events);
    commit(d, tx, &mut events).await
}

#[async_trait]
impl<D: Db> ProviderStore for D {
    #[instrument(skip_all)]
    async fn inbox_for_account(
        &self,
        channel: ChannelKind,
        account: &str,
    ) -> Result<Option<Inbox>> {
        let key = match channel {
            ChannelKind::Messenger => "page_id",
            ChannelKind::Instagram => "ig_account_id",
            ChannelKind::Whatsapp => "phone_number_id",
            ChannelKind::Zalo => "oa_id",
            ChannelKind::Shopee => "shop_id",
            _ => return Ok(None),
        };
        inbox_by_setting(self, channel, key, account).await
    }

    #[instrument(skip_all)]
    async fn contact_by_identity(
        &self,
        inbox: InboxId,
        external_id: &str,
    ) -> Result<Option<ContactId>> {
        let mut conn = self.read().await?;
        identity_contact(&mut *conn, inbox, external_id).await
    }

    #[instrument(skip_all)]
    async fn inboxes_for_business(&self, waba_id: &str) -> Result<Vec<Inbox>> {
        q_owned(format!(
            "SELECT * FROM inboxes WHERE channel = 'whatsapp' AND {} = $1 ORDER BY created_at, id",
            <D::Conn as Conn>::setting_sql(Setting::Named("waba_id"))
        ))
        .bind(waba_id)
        .read_all(self, inbox_row)
        .await?
        .into_iter()
        .map(|i| opened(self, i))
        .collect()
    }

    #[instrument(skip_all)]
    async fn identities_in(&self, contact: ContactId, inbox: InboxId) -> Result<Vec<String>> {
        q("SELECT external_id FROM contact_identities WHERE contact_id = $1 AND inbox_id = $2 ORDER BY created_at, external_id")
            .bind(contact.to_string())
            .bind(inbox.to_string())
            .read_all(self, |r| Ok(r.try_get::<String, _>(0)?))
            .await
    }

    #[instrument(skip_all)]
    async fn message_by_provider_id(
        &self,
        inbox: InboxId,
        provider_id: &str,
    ) -> Result<Option<Message>> {
        let mut conn = self.read().await?;
        message_by_provider(&mut *conn, inbox, provider_id).await
    }

    #[instrument(skip_all)]
    async fn merge_message_meta(
        &self,
        id: MessageId,
        patch: serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        let patch = &patch;
        retried(move || merge_message_meta_tx(self, id, patch, now)).await
    }

    #[instrument(skip_all)]
    async fn replies_since(&self, conv: ConversationId, since: Timestamp) -> Result<u32> {
        let n: i64 = q(
            "SELECT COUNT(*) FROM messages m LEFT JOIN message_meta mm ON mm.message_id = m.id \
             WHERE m.conversation_id = $1 AND m.created_at > $2 AND m.direction = 'outbound' \
             AND m.kind NOT IN ('note', 'agent_to_agent') AND m.delivery_status <> 'failed' \
             AND (mm.messaging_type IS NULL OR mm.messaging_type IN ('cs', 'free_form', 'RESPONSE'))",
        )
        .bind(conv.to_string())
        .bind(since.millis())
        .fetch_one(&mut *self.read().await?)
        .await?
        .try_get(0)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    #[instrument(skip_all)]
    async fn sending_message_like(
        &self,
        conv: ConversationId,
        text: &str,
    ) -> Result<Option<MessageId>> {
        q(
            "SELECT o.message_id FROM outbox o JOIN messages m ON m.id = o.message_id \
             WHERE o.conversation_id = $1 AND o.state = 'sending' AND m.body = $2 \
             ORDER BY o.queued_at, o.message_id LIMIT 1",
        )
        .bind(conv.to_string())
        .bind(text)
        .read_opt(self, |r| uuid_of(r, "message_id").map(MessageId))
        .await
    }

    #[instrument(skip_all)]
    async fn replace_settings_if(
        &self,
        inbox: InboxId,
        key: &str,
        expected: &str,
        settings: &serde_json::Value,
    ) -> Result<bool> {
        // The stored value may be sealed (a fresh nonce each time): compare its plain value, then
        // replace only if the stored text is still the one read. One `UPDATE … WHERE` does the
        // compare-and-set: PostgreSQL re-checks the condition on the locked row, so of two nodes
        // replacing the same value one wins and the other sees zero rows.
        let current: Option<serde_json::Value> = q("SELECT settings FROM inboxes WHERE id = $1")
            .bind(inbox.to_string())
            .read_opt(self, |r| crate::rows::json_of(r, "settings"))
            .await?;
        let Some(stored) = current.as_ref().and_then(|s| s[key].as_str()) else {
            return Ok(false);
        };
        if open_value(self, stored)? != expected {
            return Ok(false);
        }
        let done = q_owned(format!(
            "UPDATE inboxes SET settings = $1 WHERE id = $2 AND {} = $4",
            <D::Conn as Conn>::setting_sql(Setting::Param("$3"))
        ))
        .bind(json_text(&sealed(self, settings)))
        .bind(inbox.to_string())
        .bind(key)
        .bind(stored.to_owned())
        .write(self)
        .await?;
        forget_accounts(self);
        Ok(done.rows_affected() == 1)
    }

    #[instrument(skip_all)]
    async fn set_reachability(
        &self,
        inbox: InboxId,
        external_id: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        match reason {
            Some(r) => {
                q("INSERT INTO channel_reachability (inbox_id, external_id, reason, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (inbox_id, external_id) DO UPDATE SET reason = excluded.reason, updated_at = excluded.updated_at")
                    .bind(inbox.to_string())
                    .bind(external_id)
                    .bind(r)
                    .bind(now.millis())
                    .write(self)
                    .await?;
            }
            None => {
                q("DELETE FROM channel_reachability WHERE inbox_id = $1 AND external_id = $2")
                    .bind(inbox.to_string())
                    .bind(external_id)
                    .write(self)
                    .await?;
            }
        }
        Ok(())
    }

    #[instrument(skip_all)]
    async fn reachability(&self, inbox: InboxId, external_id: &str) -> Result<Option<String>> {
        Ok(
            q("SELECT reason FROM channel_reachability WHERE inbox_id = $1 AND external_id = $2")
                .bind(inbox.to_string())
                .bind(external_id)
                .read_opt(self, first::<String, _>)
                .await?,
        )
    }

    #[instrument(skip_all)]
    async fn replace_templates(&self, inbox: InboxId, templates: &[StoredTemplate]) -> Result<()> {
        let mut tx = self.begin().await?;
        // Two syncs of one inbox at once: one replaces after the other (never a mix of both).
        tx.lock_keys(vec![format!("templates:{inbox}")]).await?;
        q("DELETE FROM whatsapp_templates WHERE inbox_id = $1")
            .bind(inbox.to_string())
            .execute(&mut *tx)
            .await?;
        for t in templates {
            q("INSERT INTO whatsapp_templates (inbox_id, name, language, template_id, category, status, components, parameter_format, synced_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (inbox_id, name, language) DO NOTHING")
                .bind(inbox.to_string())
                .bind(&t.name)
                .bind(&t.language)
                .bind(t.template_id.as_deref())
                .bind(&t.category)
                .bind(&t.status)
                .bind(json_text(&t.components))
                .bind(&t.parameter_format)
                .bind(t.synced_at.millis())
                .execute(&mut *tx)
                .await?;
        }
        commit(self, tx, &mut []).await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn templates(&self, inbox: InboxId) -> Result<Vec<StoredTemplate>> {
        q("SELECT * FROM whatsapp_templates WHERE inbox_id = $1 ORDER BY name, language")
            .bind(inbox.to_string())
            .read_all(self, template_row)
            .await
    }

    #[instrument(skip_all)]
    async fn template(
        &self,
        inbox: InboxId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>> {
        q("SELECT * FROM whatsapp_templates WHERE inbox_id = $1 AND name = $2 AND language = $3")
            .bind(inbox.to_string())
            .bind(name)
            .bind(language)
            .read_opt(self, template_row)
            .await
    }

    #[instrument(skip_all)]
    async fn update_template(&self, inboxes: &[InboxId], u: &TemplateUpdate) -> Result<usize> {
        let mut n = 0;
        for inbox in inboxes {
            let done = q(
                "UPDATE whatsapp_templates SET status = COALESCE($1, status), category = COALESCE($2, category) \
                 WHERE inbox_id = $3 AND ((CAST($4 AS TEXT) IS NOT NULL AND template_id = $4) \
                 OR (name = $5 AND language = $6))",
            )
            .bind(u.status.as_deref())
            .bind(u.category.as_deref().map(str::to_ascii_lowercase))
            .bind(inbox.to_string())
            .bind(u.template_id.as_deref())
            .bind(u.name.as_deref())
            .bind(u.language.as_deref())
            .write(self)
            .await?;
            n += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        Ok(n)
    }
}

/// Meters a batch inside the caller's transaction (its advisory locks held) with a fixed number of
/// statements: three reads over the whole batch, the decisions in memory ([`crate::metering`]),
/// two writes.
async fn meter_batch<C: Conn>(
    tx: &mut C,
    events: &[MeterEvent],
    tariff: &Tariff,
) -> Result<Vec<Charge>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let look = metering::lookups(events);
    let texts = |keys: Vec<(String, String)>| -> Vec<Vec<Arg>> {
        keys.into_iter()
            .map(|(a, b)| vec![a.into(), b.into()])
            .collect()
    };
    let mut known = metering::Known::default();
    for r in tx
        .by_keys(Keys {
            table: "whatsapp_usage",
            on: &[("inbox_id", "="), ("event_key", "=")],
            keys: texts(look.keys),
            lock: false,
        })
        .await?
    {
        known.stored.insert(
            (r.try_get("inbox_id")?, r.try_get("event_key")?),
            charge_row(&r)?,
        );
    }
    for r in tx
        .by_keys(Keys {
            table: "whatsapp_usage",
            on: &[("business_id", "="), ("user_id", "="), ("at", ">=")],
            keys: look
                .users
                .into_iter()
                .map(|(b, u, since)| vec![b.into(), u.into(), since.into()])
                .collect(),
            lock: false,
        })
        .await?
    {
        known
            .recent
            .entry((r.try_get("business_id")?, r.try_get("user_id")?))
            .or_default()
            .push(charge_row(&r)?);
    }
    for r in tx
        .by_keys(Keys {
            table: "whatsapp_usage_counts",
            on: &[("scope", "="), ("month", "=")],
            keys: texts(look.counters),
            lock: false,
        })
        .await?
    {
        known
            .counters
            .insert((r.try_get("scope")?, r.try_get("month")?), r.try_get("n")?);
    }
    let plan = metering::plan(events, known, tariff);
    tx.insert_rows(
        "INSERT INTO whatsapp_usage (id, inbox_id, business_id, user_id, event_key, message_id, at, month, model, kind, \
         category, billable, free_reason, until, market, cost_micros, unpriced, entry_point, provider_pricing)",
        "",
        plan.rows
            .into_iter()
            .map(|u| {
                let c = u.charge;
                vec![
                    u.id.to_string().into(),
                    u.inbox_id.into(),
                    u.business_id.into(),
                    u.user_id.into(),
                    u.event_key.into(),
                    u.message_id.into(),
                    c.at.millis().into(),
                    u.month.into(),
                    c.model.as_str().into(),
                    c.kind.as_str().into(),
                    c.category.as_str().into(),
                    i64::from(c.billable).into(),
                    c.free_reason.map(|f| f.as_str().to_owned()).into(),
                    c.until.map(Timestamp::millis).into(),
                    c.market.into(),
                    c.cost_micros.into(),
                    i64::from(c.unpriced).into(),
                    i64::from(c.entry_point).into(),
                    u.provider_pricing.into(),
                ]
            })
            .collect(),
    )
    .await?;
    tx.insert_rows(
        "INSERT INTO whatsapp_usage_counts (scope, month, n)",
        "ON CONFLICT (scope, month) DO UPDATE SET n = whatsapp_usage_counts.n + excluded.n",
        plan.increments
            .into_iter()
            .map(|(scope, month, n)| vec![scope.into(), month.into(), n.into()])
            .collect(),
    )
    .await?;
    Ok(plan.charges)
}

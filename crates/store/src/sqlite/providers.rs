//! The SQLite side of WhatsApp, Zalo OA, Telegram and Shopee: delivery statuses inside the
//! channel group commit, inbox lookups by account, identity links, reachability, WhatsApp
//! templates and cost metering (a batch per writer transaction, planned by `crate::metering`; the
//! single writer keeps the month's free tier exact).

use super::meta::{
    edit_meta, flush, message_by_id, message_by_provider, rank, set_provider_id, updated_event,
    workspace_of,
};
use super::*;
use crate::channel::ChannelOutcome;
use crate::provider::*;
use switchboard_core::billing::{Category, Charge, ChargeKind, FreeReason, PricingModel, Tariff};

/// A `ChannelItem::Status`, borrowed.
pub(super) struct StatusItem<'a> {
    pub inbox: InboxId,
    pub provider_message_id: &'a str,
    pub ours: Option<MessageId>,
    pub status: DeliveryStatus,
    pub failure: Option<&'a (String, serde_json::Value)>,
}

/// Applies a provider status to our message inside the ingest transaction.
pub(super) async fn status(
    conn: &mut SqliteConnection,
    s: StatusItem<'_>,
    now: Timestamp,
    events: &mut Vec<Event>,
    drafts: &mut Vec<EventDraft>,
) -> Result<ChannelOutcome> {
    let _ = events;
    let mine = match s.ours {
        Some(id) => message_by_id(conn, id)
            .await?
            .filter(|m| m.inbox_id == s.inbox),
        None => None,
    };
    let mine = match mine {
        Some(m) => Some(m),
        None => message_by_provider(conn, s.inbox, s.provider_message_id).await?,
    };
    let Some(m) = mine.filter(|m| m.direction == Direction::Outbound) else {
        return Ok(ChannelOutcome::Nothing);
    };
    // A status means the provider accepted the message: the outbox must not send it again, even
    // if its HTTP answer was lost.
    sqlx::query("UPDATE outbox SET state = 'sent', provider_message_id = COALESCE(provider_message_id, ?), lease_until = NULL, updated_at = ? WHERE message_id = ? AND state IN ('queued', 'sending')")
        .bind(s.provider_message_id)
        .bind(now.millis())
        .bind(m.id.to_string())
        .execute(&mut *conn)
        .await?;
    let mut changed = false;
    if m.provider_message_id.is_none() || m.delivery_status == DeliveryStatus::Queued {
        set_provider_id(conn, m.id, s.provider_message_id).await?;
        changed = true;
    }
    let Some(mut m) = message_by_id(conn, m.id).await? else {
        return Ok(ChannelOutcome::Nothing);
    };
    if s.status == DeliveryStatus::Failed {
        if m.delivery_status != DeliveryStatus::Failed {
            let (reason, detail) = s
                .failure
                .cloned()
                .unwrap_or_else(|| ("provider_error".into(), serde_json::Value::Null));
            sqlx::query(
                "UPDATE messages SET delivery_status = 'failed', failure_reason = ? WHERE id = ?",
            )
            .bind(&reason)
            .bind(m.id.to_string())
            .execute(&mut *conn)
            .await?;
            m.delivery_status = DeliveryStatus::Failed;
            m.failure_reason = Some(reason);
            edit_meta(conn, &m, now, drafts, |o| {
                o.insert("provider_error".into(), detail);
            })
            .await?;
            return Ok(ChannelOutcome::Updated(1));
        }
    } else if m.delivery_status != DeliveryStatus::Failed
        && rank(s.status) > rank(m.delivery_status)
    {
        sqlx::query("UPDATE messages SET delivery_status = ? WHERE id = ?")
            .bind(s.status.as_str())
            .bind(m.id.to_string())
            .execute(&mut *conn)
            .await?;
        m.delivery_status = s.status;
        changed = true;
    }
    if changed {
        let meta = super::meta::load_meta(conn, m.id).await?;
        drafts.push(updated_event(&m, meta.as_ref()));
        return Ok(ChannelOutcome::Updated(1));
    }
    Ok(ChannelOutcome::Nothing)
}

fn template_row(r: &SqliteRow) -> Result<StoredTemplate> {
    Ok(StoredTemplate {
        name: r.try_get("name")?,
        language: r.try_get("language")?,
        template_id: r.try_get("template_id")?,
        category: r.try_get("category")?,
        status: r.try_get("status")?,
        components: json_of(r, "components")?,
        parameter_format: r.try_get("parameter_format")?,
        synced_at: ts(r, "synced_at")?,
    })
}

fn charge_row(r: &SqliteRow) -> Result<Charge> {
    Ok(Charge {
        at: ts(r, "at")?,
        model: enum_of(r, "model", PricingModel::parse)?,
        kind: enum_of(r, "kind", ChargeKind::parse)?,
        category: enum_of(r, "category", Category::parse)?,
        billable: r.try_get::<i64, _>("billable")? != 0,
        free_reason: r
            .try_get::<Option<String>, _>("free_reason")?
            .map(|s| FreeReason::parse(&s).ok_or_else(|| corrupt("free_reason")))
            .transpose()?,
        until: opt_ts(r, "until")?,
        market: r.try_get("market")?,
        cost_micros: r.try_get("cost_micros")?,
        unpriced: r.try_get::<i64, _>("unpriced")? != 0,
        entry_point: r.try_get::<i64, _>("entry_point")? != 0,
    })
}

#[async_trait]
impl BillingStore for SqliteStore {
    #[instrument(skip_all)]
    async fn meter_whatsapp_many(
        &self,
        events: &[MeterEvent],
        tariff: &Tariff,
    ) -> Result<Vec<Charge>> {
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        let out = meter_batch(&mut tx, events, tariff).await?;
        tx.commit().await?;
        Ok(out)
    }

    #[instrument(skip_all)]
    async fn whatsapp_usage(
        &self,
        month: &str,
        inboxes: Option<&[InboxId]>,
    ) -> Result<Vec<Charge>> {
        let rows = match inboxes {
            None => {
                sqlx::query("SELECT * FROM whatsapp_usage WHERE month = ? ORDER BY at")
                    .bind(month)
                    .fetch_all(self.reader())
                    .await?
            }
            Some(ids) => {
                sqlx::query(
                    "SELECT * FROM whatsapp_usage WHERE month = ? AND inbox_id IN (SELECT value FROM json_each(?)) ORDER BY at",
                )
                .bind(month)
                .bind(ids_json(ids))
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(charge_row).collect()
    }
}

#[async_trait]
impl ProviderStore for SqliteStore {
    #[instrument(skip_all)]
    async fn inbox_for_account(
        &self,
        channel: ChannelKind,
        account: &str,
    ) -> Result<Option<Inbox>> {
        let sql = match channel {
            ChannelKind::Whatsapp => {
                "SELECT * FROM inboxes WHERE channel = 'whatsapp' AND json_extract(settings, '$.phone_number_id') = ?"
            }
            ChannelKind::Zalo => {
                "SELECT * FROM inboxes WHERE channel = 'zalo' AND json_extract(settings, '$.oa_id') = ?"
            }
            ChannelKind::Shopee => {
                "SELECT * FROM inboxes WHERE channel = 'shopee' AND json_extract(settings, '$.shop_id') = ?"
            }
            _ => return Ok(None),
        };
        self.inbox_by_account_cached(channel, account, sql).await
    }

    #[instrument(skip_all)]
    async fn contact_by_identity(
        &self,
        inbox: InboxId,
        external_id: &str,
    ) -> Result<Option<ContactId>> {
        let mut conn = self.reader().acquire().await?;
        super::meta::identity_contact(&mut conn, inbox, external_id).await
    }

    #[instrument(skip_all)]
    async fn inboxes_for_business(&self, waba_id: &str) -> Result<Vec<Inbox>> {
        sqlx::query(
            "SELECT * FROM inboxes WHERE channel = 'whatsapp' AND json_extract(settings, '$.waba_id') = ?",
        )
        .bind(waba_id)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(inbox_row)
        .collect()
    }

    #[instrument(skip_all)]
    async fn identities_in(&self, contact: ContactId, inbox: InboxId) -> Result<Vec<String>> {
        sqlx::query("SELECT external_id FROM contact_identities WHERE contact_id = ? AND inbox_id = ? ORDER BY created_at")
            .bind(contact.to_string())
            .bind(inbox.to_string())
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    #[instrument(skip_all)]
    async fn message_by_provider_id(
        &self,
        inbox: InboxId,
        provider_id: &str,
    ) -> Result<Option<Message>> {
        let mut conn = self.reader().acquire().await?;
        message_by_provider(&mut conn, inbox, provider_id).await
    }

    #[instrument(skip_all)]
    async fn merge_message_meta(
        &self,
        id: MessageId,
        patch: serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        let Some(m) = message_by_id(&mut tx, id).await? else {
            return Err(StoreError::NotFound);
        };
        let mut drafts = Vec::new();
        edit_meta(&mut tx, &m, now, &mut drafts, |o| {
            if let serde_json::Value::Object(p) = patch {
                o.extend(p);
            }
        })
        .await?;
        let ws = workspace_of(&mut tx, m.conversation_id).await?;
        let mut events = Vec::new();
        flush(&mut tx, ws, drafts, now, &mut events).await?;
        tx.commit().await?;
        self.publish(&events);
        Ok(())
    }

    #[instrument(skip_all)]
    async fn replies_since(&self, conv: ConversationId, since: Timestamp) -> Result<u32> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM messages m LEFT JOIN message_meta mm ON mm.message_id = m.id \
             WHERE m.conversation_id = ? AND m.created_at > ? AND m.direction = 'outbound' \
             AND m.kind NOT IN ('note', 'agent_to_agent') AND m.delivery_status != 'failed' \
             AND (mm.messaging_type IS NULL OR mm.messaging_type IN ('cs', 'free_form', 'RESPONSE'))",
        )
        .bind(conv.to_string())
        .bind(since.millis())
        .fetch_one(self.reader())
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
        sqlx::query(
            "SELECT o.message_id FROM outbox o JOIN messages m ON m.id = o.message_id \
             WHERE o.conversation_id = ? AND o.state = 'sending' AND m.body = ? ORDER BY o.queued_at LIMIT 1",
        )
        .bind(conv.to_string())
        .bind(text)
        .fetch_optional(self.reader())
        .await?
        .map(|r| uuid_of(&r, "message_id").map(MessageId))
        .transpose()
    }

    #[instrument(skip_all)]
    async fn replace_settings_if(
        &self,
        inbox: InboxId,
        key: &str,
        expected: &str,
        settings: &serde_json::Value,
    ) -> Result<bool> {
        let mut conn = self.writer().await?;
        let done = sqlx::query(
            "UPDATE inboxes SET settings = ? WHERE id = ? AND json_extract(settings, '$.' || ?) = ?",
        )
        .bind(json_text(settings))
        .bind(inbox.to_string())
        .bind(key)
        .bind(expected)
        .execute(&mut *conn)
        .await?;
        self.accounts.forget();
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
        let mut conn = self.writer().await?;
        match reason {
            Some(r) => {
                sqlx::query("INSERT INTO channel_reachability (inbox_id, external_id, reason, updated_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (inbox_id, external_id) DO UPDATE SET reason = excluded.reason, updated_at = excluded.updated_at")
                    .bind(inbox.to_string())
                    .bind(external_id)
                    .bind(r)
                    .bind(now.millis())
                    .execute(&mut *conn)
                    .await?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM channel_reachability WHERE inbox_id = ? AND external_id = ?",
                )
                .bind(inbox.to_string())
                .bind(external_id)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }

    #[instrument(skip_all)]
    async fn reachability(&self, inbox: InboxId, external_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query(
            "SELECT reason FROM channel_reachability WHERE inbox_id = ? AND external_id = ?",
        )
        .bind(inbox.to_string())
        .bind(external_id)
        .fetch_optional(self.reader())
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?)
    }

    #[instrument(skip_all)]
    async fn replace_templates(&self, inbox: InboxId, templates: &[StoredTemplate]) -> Result<()> {
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM whatsapp_templates WHERE inbox_id = ?")
            .bind(inbox.to_string())
            .execute(&mut *tx)
            .await?;
        for t in templates {
            sqlx::query("INSERT INTO whatsapp_templates (inbox_id, name, language, template_id, category, status, components, parameter_format, synced_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (inbox_id, name, language) DO NOTHING")
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
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn templates(&self, inbox: InboxId) -> Result<Vec<StoredTemplate>> {
        sqlx::query("SELECT * FROM whatsapp_templates WHERE inbox_id = ? ORDER BY name, language")
            .bind(inbox.to_string())
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(template_row)
            .collect()
    }

    #[instrument(skip_all)]
    async fn template(
        &self,
        inbox: InboxId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>> {
        sqlx::query(
            "SELECT * FROM whatsapp_templates WHERE inbox_id = ? AND name = ? AND language = ?",
        )
        .bind(inbox.to_string())
        .bind(name)
        .bind(language)
        .fetch_optional(self.reader())
        .await?
        .map(|r| template_row(&r))
        .transpose()
    }

    #[instrument(skip_all)]
    async fn update_template(&self, inboxes: &[InboxId], u: &TemplateUpdate) -> Result<usize> {
        let mut conn = self.writer().await?;
        let mut n = 0;
        for inbox in inboxes {
            let done = sqlx::query(
                "UPDATE whatsapp_templates SET status = COALESCE(?, status), category = COALESCE(?, category) \
                 WHERE inbox_id = ? AND ((? IS NOT NULL AND template_id = ?) OR (name = ? AND language = ?))",
            )
            .bind(u.status.as_deref())
            .bind(u.category.as_deref().map(str::to_ascii_lowercase))
            .bind(inbox.to_string())
            .bind(u.template_id.as_deref())
            .bind(u.template_id.as_deref())
            .bind(u.name.as_deref())
            .bind(u.language.as_deref())
            .execute(&mut *conn)
            .await?;
            n += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        Ok(n)
    }
}

/// Meters a batch inside the caller's transaction with a fixed number of statements: three reads
/// over the whole batch, the decisions in memory ([`crate::metering`]), two writes.
async fn meter_batch(
    tx: &mut SqliteConnection,
    events: &[MeterEvent],
    tariff: &Tariff,
) -> Result<Vec<Charge>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let look = metering::lookups(events);
    let mut known = metering::Known::default();
    for r in sqlx::query(
        "SELECT u.* FROM json_each(?) AS k \
         JOIN whatsapp_usage u ON u.inbox_id = k.value ->> 0 AND u.event_key = k.value ->> 1",
    )
    .bind(json_text(&look.keys))
    .fetch_all(&mut *tx)
    .await?
    {
        known.stored.insert(
            (r.try_get("inbox_id")?, r.try_get("event_key")?),
            charge_row(&r)?,
        );
    }
    for r in sqlx::query(
        "SELECT u.* FROM json_each(?) AS k JOIN whatsapp_usage u \
         ON u.business_id = k.value ->> 0 AND u.user_id = k.value ->> 1 AND u.at >= k.value ->> 2",
    )
    .bind(json_text(&look.users))
    .fetch_all(&mut *tx)
    .await?
    {
        known
            .recent
            .entry((r.try_get("business_id")?, r.try_get("user_id")?))
            .or_default()
            .push(charge_row(&r)?);
    }
    for r in sqlx::query(
        "SELECT c.scope, c.month, c.n FROM json_each(?) AS k \
         JOIN whatsapp_usage_counts c ON c.scope = k.value ->> 0 AND c.month = k.value ->> 1",
    )
    .bind(json_text(&look.counters))
    .fetch_all(&mut *tx)
    .await?
    {
        known
            .counters
            .insert((r.try_get("scope")?, r.try_get("month")?), r.try_get("n")?);
    }
    let plan = metering::plan(events, known, tariff);
    write_values(
        tx,
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
    write_values(
        tx,
        "INSERT INTO whatsapp_usage_counts (scope, month, n)",
        "ON CONFLICT (scope, month) DO UPDATE SET n = n + excluded.n",
        plan.increments
            .into_iter()
            .map(|(scope, month, n)| vec![scope.into(), month.into(), n.into()])
            .collect(),
    )
    .await?;
    Ok(plan.charges)
}

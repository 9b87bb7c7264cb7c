//! The PostgreSQL side of WhatsApp, Zalo OA, Telegram and Shopee: delivery statuses inside the
//! channel group commit, inbox lookups by account, identity links, reachability, WhatsApp
//! templates and cost metering. Where SQLite relies on its single writer, this side serialises
//! with locks: metering takes transaction-scoped advisory locks on the business and the inbox
//! (the month's free tier is counted exactly when several nodes meter at once), a status locks
//! its message row (statuses only move forward), settings are replaced by a compare-and-set
//! `UPDATE … WHERE`.

use super::meta::{
    edit_meta, flush, load_meta, message_by_id, message_by_provider, rank, set_provider_id,
    updated_event, workspace_of,
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

/// Our message, its row locked until commit (two statuses of one message on two nodes apply one
/// after the other, so a status never moves backwards).
async fn lock_message(conn: &mut PgConnection, id: MessageId) -> Result<Option<Message>> {
    sqlx::query("SELECT * FROM messages WHERE id = $1 FOR UPDATE")
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?
        .map(|r| message_row(&r))
        .transpose()
}

/// Applies a provider status to our message inside the ingest transaction.
pub(super) async fn status(
    conn: &mut PgConnection,
    s: StatusItem<'_>,
    now: Timestamp,
    drafts: &mut Vec<EventDraft>,
) -> Result<ChannelOutcome> {
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
    // if its HTTP answer was lost. (The outbox row before the message row, like `outbox_sent`.)
    sqlx::query("UPDATE outbox SET state = 'sent', provider_message_id = COALESCE(provider_message_id, $1), lease_until = NULL, updated_at = $2 WHERE message_id = $3 AND state IN ('queued', 'sending')")
        .bind(s.provider_message_id)
        .bind(now.millis())
        .bind(m.id.to_string())
        .execute(&mut *conn)
        .await?;
    let Some(m) = lock_message(conn, m.id).await? else {
        return Ok(ChannelOutcome::Nothing);
    };
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
                "UPDATE messages SET delivery_status = 'failed', failure_reason = $1 WHERE id = $2",
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
        sqlx::query("UPDATE messages SET delivery_status = $1 WHERE id = $2")
            .bind(s.status.as_str())
            .bind(m.id.to_string())
            .execute(&mut *conn)
            .await?;
        m.delivery_status = s.status;
        changed = true;
    }
    if changed {
        let meta = load_meta(conn, m.id).await?;
        drafts.push(updated_event(&m, meta.as_ref()));
        return Ok(ChannelOutcome::Updated(1));
    }
    Ok(ChannelOutcome::Nothing)
}

fn template_row(r: &PgRow) -> Result<StoredTemplate> {
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

fn charge_row(r: &PgRow) -> Result<Charge> {
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

impl PgStore {
    /// One metering transaction. The advisory locks on the business (its conversations, its
    /// customers' state) and the inbox (its messages, its event keys) are taken before anything is
    /// read, so two nodes metering for one business count the free tier one after the other, and
    /// an event metered twice at once is written once.
    async fn meter_tx(&self, events: &[MeterEvent], tariff: &Tariff) -> Result<Vec<Charge>> {
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        lock_keys(
            &mut tx,
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
        let out = meter_batch(&mut tx, events, tariff).await?;
        tx.commit().await?;
        Ok(out)
    }
}

#[async_trait]
impl BillingStore for PgStore {
    #[instrument(skip_all)]
    async fn meter_whatsapp_many(
        &self,
        events: &[MeterEvent],
        tariff: &Tariff,
    ) -> Result<Vec<Charge>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.meter_tx(events, tariff).await {
                Err(err) if attempt < 4 && retryable(&err) => continue,
                other => return other,
            }
        }
    }

    #[instrument(skip_all)]
    async fn whatsapp_usage(
        &self,
        month: &str,
        inboxes: Option<&[InboxId]>,
    ) -> Result<Vec<Charge>> {
        let rows = match inboxes {
            None => {
                sqlx::query("SELECT * FROM whatsapp_usage WHERE month = $1 ORDER BY at, id")
                    .bind(month)
                    .fetch_all(self.reader())
                    .await?
            }
            Some(ids) => {
                sqlx::query(
                    "SELECT * FROM whatsapp_usage WHERE month = $1 AND inbox_id = ANY($2) ORDER BY at, id",
                )
                .bind(month)
                .bind(id_strings(ids))
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(charge_row).collect()
    }
}

impl PgStore {
    async fn merge_message_meta_tx(
        &self,
        id: MessageId,
        patch: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        // The message row is held until commit: two merges on two nodes do not lose each other's
        // keys (read, merge, write of the extras happen one after the other).
        let Some(m) = lock_message(&mut tx, id).await? else {
            return Err(StoreError::NotFound);
        };
        let mut drafts = Vec::new();
        edit_meta(&mut tx, &m, now, &mut drafts, |o| {
            if let serde_json::Value::Object(p) = patch {
                o.extend(p.clone());
            }
        })
        .await?;
        let ws = workspace_of(&mut tx, m.conversation_id).await?;
        let mut events = Vec::new();
        flush(&mut tx, ws, drafts, now, &mut events).await?;
        self.commit(tx, &mut events).await
    }
}

#[async_trait]
impl ProviderStore for PgStore {
    #[instrument(skip_all)]
    async fn inbox_for_account(
        &self,
        channel: ChannelKind,
        account: &str,
    ) -> Result<Option<Inbox>> {
        let sql = match channel {
            ChannelKind::Whatsapp => {
                "SELECT * FROM inboxes WHERE channel = 'whatsapp' AND (settings::json ->> 'phone_number_id') = $1"
            }
            ChannelKind::Zalo => {
                "SELECT * FROM inboxes WHERE channel = 'zalo' AND (settings::json ->> 'oa_id') = $1"
            }
            ChannelKind::Shopee => {
                "SELECT * FROM inboxes WHERE channel = 'shopee' AND (settings::json ->> 'shop_id') = $1"
            }
            _ => return Ok(None),
        };
        sqlx::query(sql)
            .bind(account)
            .fetch_optional(self.reader())
            .await?
            .map(|r| inbox_row(&r))
            .transpose()
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
            "SELECT * FROM inboxes WHERE channel = 'whatsapp' AND (settings::json ->> 'waba_id') = $1 ORDER BY created_at, id",
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
        sqlx::query("SELECT external_id FROM contact_identities WHERE contact_id = $1 AND inbox_id = $2 ORDER BY created_at, external_id")
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.merge_message_meta_tx(id, &patch, now).await {
                Err(e) if attempt < 4 && retryable(&e) => continue,
                other => return other,
            }
        }
    }

    #[instrument(skip_all)]
    async fn replies_since(&self, conv: ConversationId, since: Timestamp) -> Result<u32> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM messages m LEFT JOIN message_meta mm ON mm.message_id = m.id \
             WHERE m.conversation_id = $1 AND m.created_at > $2 AND m.direction = 'outbound' \
             AND m.kind NOT IN ('note', 'agent_to_agent') AND m.delivery_status <> 'failed' \
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
             WHERE o.conversation_id = $1 AND o.state = 'sending' AND m.body = $2 \
             ORDER BY o.queued_at, o.message_id LIMIT 1",
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
        // One statement: PostgreSQL re-checks the condition on the locked row, so of two nodes
        // replacing the same value one wins and the other sees zero rows.
        let done = sqlx::query(
            "UPDATE inboxes SET settings = $1 WHERE id = $2 AND (settings::json ->> $3) = $4",
        )
        .bind(json_text(settings))
        .bind(inbox.to_string())
        .bind(key)
        .bind(expected)
        .execute(&self.write)
        .await?;
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
                sqlx::query("INSERT INTO channel_reachability (inbox_id, external_id, reason, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (inbox_id, external_id) DO UPDATE SET reason = excluded.reason, updated_at = excluded.updated_at")
                    .bind(inbox.to_string())
                    .bind(external_id)
                    .bind(r)
                    .bind(now.millis())
                    .execute(&self.write)
                    .await?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM channel_reachability WHERE inbox_id = $1 AND external_id = $2",
                )
                .bind(inbox.to_string())
                .bind(external_id)
                .execute(&self.write)
                .await?;
            }
        }
        Ok(())
    }

    #[instrument(skip_all)]
    async fn reachability(&self, inbox: InboxId, external_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query(
            "SELECT reason FROM channel_reachability WHERE inbox_id = $1 AND external_id = $2",
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
        // Two syncs of one inbox at once: one replaces after the other (never a mix of both).
        lock_keys(&mut tx, vec![format!("templates:{inbox}")]).await?;
        sqlx::query("DELETE FROM whatsapp_templates WHERE inbox_id = $1")
            .bind(inbox.to_string())
            .execute(&mut *tx)
            .await?;
        for t in templates {
            sqlx::query("INSERT INTO whatsapp_templates (inbox_id, name, language, template_id, category, status, components, parameter_format, synced_at) \
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
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn templates(&self, inbox: InboxId) -> Result<Vec<StoredTemplate>> {
        sqlx::query("SELECT * FROM whatsapp_templates WHERE inbox_id = $1 ORDER BY name, language")
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
            "SELECT * FROM whatsapp_templates WHERE inbox_id = $1 AND name = $2 AND language = $3",
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
        let mut n = 0;
        for inbox in inboxes {
            let done = sqlx::query(
                "UPDATE whatsapp_templates SET status = COALESCE($1, status), category = COALESCE($2, category) \
                 WHERE inbox_id = $3 AND (($4::text IS NOT NULL AND template_id = $4::text) \
                 OR (name = $5::text AND language = $6::text))",
            )
            .bind(u.status.as_deref())
            .bind(u.category.as_deref().map(str::to_ascii_lowercase))
            .bind(inbox.to_string())
            .bind(u.template_id.as_deref())
            .bind(u.name.as_deref())
            .bind(u.language.as_deref())
            .execute(&self.write)
            .await?;
            n += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        Ok(n)
    }
}

/// Meters a batch inside the caller's transaction (its advisory locks held) with a fixed number of
/// statements: three reads over the whole batch, the decisions in memory
/// ([`crate::metering`]), two writes. The reads look each key up (`LATERAL`): joined as sets,
/// PostgreSQL hashed the whole table per batch while it was young and its plan cached —
/// millions of rows read in a 30,000-message benchmark.
async fn meter_batch(
    tx: &mut PgConnection,
    events: &[MeterEvent],
    tariff: &Tariff,
) -> Result<Vec<Charge>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let look = metering::lookups(events);
    let mut known = metering::Known::default();
    let (inboxes, keys): (Vec<String>, Vec<String>) = look.keys.into_iter().unzip();
    for r in sqlx::query(
        "SELECT u.* FROM unnest($1::text[], $2::text[]) AS k(i, e) CROSS JOIN LATERAL \
         (SELECT * FROM whatsapp_usage u WHERE u.inbox_id = k.i AND u.event_key = k.e) u",
    )
    .bind(inboxes)
    .bind(keys)
    .fetch_all(&mut *tx)
    .await?
    {
        known.stored.insert(
            (r.try_get("inbox_id")?, r.try_get("event_key")?),
            charge_row(&r)?,
        );
    }
    let mut businesses = Vec::new();
    let mut users = Vec::new();
    let mut since = Vec::new();
    for (b, u, s) in look.users {
        businesses.push(b);
        users.push(u);
        since.push(s);
    }
    for r in sqlx::query(
        "SELECT u.* FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(b, u, s) CROSS JOIN LATERAL \
         (SELECT * FROM whatsapp_usage u WHERE u.business_id = k.b AND u.user_id = k.u AND u.at >= k.s) u",
    )
    .bind(businesses)
    .bind(users)
    .bind(since)
    .fetch_all(&mut *tx)
    .await?
    {
        known
            .recent
            .entry((r.try_get("business_id")?, r.try_get("user_id")?))
            .or_default()
            .push(charge_row(&r)?);
    }
    let (scopes, months): (Vec<String>, Vec<String>) = look.counters.into_iter().unzip();
    for r in sqlx::query(
        "SELECT c.scope, c.month, c.n FROM unnest($1::text[], $2::text[]) AS k(s, m) \
         JOIN whatsapp_usage_counts c ON c.scope = k.s AND c.month = k.m",
    )
    .bind(scopes)
    .bind(months)
    .fetch_all(&mut *tx)
    .await?
    {
        known
            .counters
            .insert((r.try_get("scope")?, r.try_get("month")?), r.try_get("n")?);
    }
    let plan = metering::plan(events, known, tariff);
    let rows = &plan.rows;
    let text = |f: &dyn Fn(&metering::UsageRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let opt =
        |f: &dyn Fn(&metering::UsageRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let int = |f: &dyn Fn(&metering::UsageRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO whatsapp_usage (id, inbox_id, business_id, user_id, event_key, message_id, at, month, model, kind, \
         category, billable, free_reason, until, market, cost_micros, unpriced, entry_point, provider_pricing) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[], $14::bigint[], $15::text[], \
         $16::bigint[], $17::bigint[], $18::bigint[], $19::text[])",
    )
    .bind(text(&|u| u.id.to_string()))
    .bind(text(&|u| u.inbox_id.clone()))
    .bind(text(&|u| u.business_id.clone()))
    .bind(text(&|u| u.user_id.clone()))
    .bind(text(&|u| u.event_key.clone()))
    .bind(opt(&|u| u.message_id.clone()))
    .bind(int(&|u| u.charge.at.millis()))
    .bind(text(&|u| u.month.clone()))
    .bind(text(&|u| u.charge.model.as_str().to_owned()))
    .bind(text(&|u| u.charge.kind.as_str().to_owned()))
    .bind(text(&|u| u.charge.category.as_str().to_owned()))
    .bind(int(&|u| i64::from(u.charge.billable)))
    .bind(opt(&|u| u.charge.free_reason.map(|f| f.as_str().to_owned())))
    .bind(rows.iter().map(|u| u.charge.until.map(Timestamp::millis)).collect::<Vec<_>>())
    .bind(text(&|u| u.charge.market.clone()))
    .bind(int(&|u| u.charge.cost_micros))
    .bind(int(&|u| i64::from(u.charge.unpriced)))
    .bind(int(&|u| i64::from(u.charge.entry_point)))
    .bind(opt(&|u| u.provider_pricing.clone()))
    .execute(&mut *tx)
    .await?;
    let mut scopes = Vec::new();
    let mut months = Vec::new();
    let mut counts = Vec::new();
    for (s, m, n) in plan.increments {
        scopes.push(s);
        months.push(m);
        counts.push(n);
    }
    sqlx::query(
        "INSERT INTO whatsapp_usage_counts (scope, month, n) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) \
         ON CONFLICT (scope, month) DO UPDATE SET n = whatsapp_usage_counts.n + excluded.n",
    )
    .bind(scopes)
    .bind(months)
    .bind(counts)
    .execute(&mut *tx)
    .await?;
    Ok(plan.charges)
}

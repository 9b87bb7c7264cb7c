//! The one way in for provider webhooks, the same for every provider of the registry
//! (`switchboard_channels::provider`): find whose secret applies from the accounts the body names
//! (bounded work before verifying), verify, parse into channel-neutral events for the inboxes that
//! verified, store them through the group-commit writer in the provider's time order, do what has
//! to happen around them (profiles, reachability, metering, template updates), and only then
//! answer — so a 200 means the events are on disk, and a failure makes the provider deliver again.

use crate::channel_ingest::stamp;
use crate::error::{ApiError, ApiResult};
use crate::outbox::ProfileJob;
use crate::responses::unavailable;
use crate::state::AppState;
use std::collections::{HashMap, HashSet};
use switchboard_channels::provider::{
    Ack, Arrival, Claim, Claims, Effect, Provider, Verified, WebhookRequest,
};
use switchboard_core::*;
use switchboard_store::{ChannelOutcome, InboundEvent, IngestError, Ingested, TemplateUpdate};

/// How many accounts a webhook may name before its signature is checked against every inbox of
/// the provider first (bounded work before verification, whatever the body says).
const LOOKUPS_BEFORE_VERIFYING: usize = 32;

/// Verifies each signing key once, however many inboxes share it.
struct Checks<'a> {
    provider: &'a dyn Provider,
    req: &'a WebhookRequest<'a>,
    done: HashMap<String, bool>,
}

impl Checks<'_> {
    fn signed_for(&mut self, inbox: &Inbox) -> bool {
        let Some(key) = self.provider.signing_key(inbox, self.req) else {
            return false;
        };
        if let Some(ok) = self.done.get(&key) {
            return *ok;
        }
        let ok = self.provider.verify(inbox, self.req);
        self.done.insert(key, ok);
        ok
    }
}

async fn lookup(st: &AppState, p: &dyn Provider, claim: &Claim) -> ApiResult<Vec<Inbox>> {
    Ok(match claim {
        Claim::Account(channel, id) => st
            .store
            .inbox_for_account(*channel, id)
            .await?
            .into_iter()
            .collect(),
        Claim::Business(id) => st.store.inboxes_for_business(id).await?,
        Claim::Inbox(id) => st
            .store
            .inbox(*id)
            .await?
            .filter(|i| p.channels().contains(&i.channel))
            .into_iter()
            .collect(),
    })
}

/// The inboxes (by the claims that name them) of a webhook signed for them; `Err` (401) when no
/// inbox of ours verifies it. A few named accounts are looked up and their secrets tried; a
/// webhook naming many accounts, or none of ours, is checked against every inbox of the provider
/// first — so a large unsigned body costs one query and one check per secret, and a signed webhook
/// for an account we no longer hold is recognised as the provider's and answered 200.
async fn verified(
    st: &AppState,
    p: &dyn Provider,
    req: &WebhookRequest<'_>,
) -> ApiResult<Verified> {
    let mut checks = Checks {
        provider: p,
        req,
        done: HashMap::new(),
    };
    let claims = p.claims(req, LOOKUPS_BEFORE_VERIFYING);
    let mut found: Vec<(Claim, Inbox)> = Vec::new();
    if let Claims::Named(named) = &claims {
        for c in named {
            for i in lookup(st, p, c).await? {
                found.push((c.clone(), i));
            }
        }
    }
    if !found.iter().any(|(_, i)| checks.signed_for(i)) {
        let all: Vec<Inbox> = st
            .store
            .list_inboxes(st.workspace_id)
            .await?
            .into_iter()
            .filter(|i| p.channels().contains(&i.channel))
            .collect();
        if !all.iter().any(|i| checks.signed_for(i)) {
            tracing::warn!(
                provider = p.name(),
                bytes = req.body.len(),
                "webhook refused: unknown account or bad signature"
            );
            return Err(ApiError::unauthorized(p.refused()));
        }
        // Signed by one of ours: now its accounts may be read in full.
        let named: HashSet<Claim> = match claims {
            Claims::Named(n) => n,
            Claims::TooMany => match p.claims(req, usize::MAX) {
                Claims::Named(n) => n,
                Claims::TooMany => Vec::new(),
            },
        }
        .into_iter()
        .collect();
        found = all
            .into_iter()
            .flat_map(|i| {
                p.claims_of(&i)
                    .into_iter()
                    .filter(|c| named.contains(c))
                    .map(move |c| (c, i.clone()))
            })
            .collect();
    }
    // Each account is trusted only on its own inbox's secret: one app can serve many Pages, but
    // an entry must never be trusted on another app's signature.
    let mut out = Verified::default();
    for (c, i) in found {
        if checks.signed_for(&i) {
            out.add(c, i);
        }
    }
    Ok(out)
}

/// Receives one webhook of `p`: verified, stored and acted on, or an error (401, 400, 503).
pub async fn receive(st: &AppState, p: &dyn Provider, req: &WebhookRequest<'_>) -> ApiResult<Ack> {
    let inboxes = verified(st, p, req).await?;
    let now = st.clock.now();
    // Parsed, with plausible times, in provider time order (providers guarantee none, §1.3).
    let mut arrivals = switchboard_channels::provider::arrivals(p, req, &inboxes, now)
        .map_err(|e| ApiError::bad_request("bad_webhook", e.0))?;
    for a in &mut arrivals {
        match_echo_by_text(st, a).await?;
    }
    // The events go to the writer; what is left of each arrival is what to do around it.
    let mut stored = Vec::with_capacity(arrivals.len());
    let mut stamped = Vec::with_capacity(arrivals.len());
    for a in &mut arrivals {
        let inbox = inboxes.by_id(a.inbox);
        match (inbox, a.event.take()) {
            (Some(i), Some(event)) => {
                stamped.push(stamp(i.workspace_id, i.id, event));
                stored.push(true);
            }
            _ => stored.push(false),
        }
    }
    let outcomes = st
        .channel_ingest
        .submit_all(stamped)
        .await
        .map_err(unavailable)?;
    let mut outcomes = outcomes.into_iter();
    let mut usage = super::usage::Meterings::new(st);
    for (a, stored) in arrivals.iter().zip(stored) {
        let outcome = if stored { outcomes.next() } else { None };
        let Some(inbox) = inboxes.by_id(a.inbox) else {
            continue;
        };
        for e in &a.effects {
            effect(st, inbox, e, outcome.as_ref(), &mut usage, now).await?;
        }
    }
    usage.flush().await?;
    Ok(p.ack(&arrivals))
}

/// A Zalo echo carries no marker of ours: a send of ours still waiting for its answer with
/// exactly this text is taken to be it (so it is not stored twice).
async fn match_echo_by_text(st: &AppState, a: &mut Arrival) -> ApiResult<()> {
    if !a.effects.contains(&Effect::EchoByText) {
        return Ok(());
    }
    let Some(InboundEvent::Echo(e)) = &mut a.event else {
        return Ok(());
    };
    if e.ours.is_some() {
        return Ok(());
    }
    if let Some(contact) = st.store.contact_by_identity(a.inbox, &e.customer).await?
        && let Some(c) = st.store.conversation_of(contact, a.inbox).await?
    {
        e.ours = st.store.sending_message_like(c.id, &e.text).await?;
    }
    Ok(())
}

/// A new (not redelivered) message the event was stored as.
fn new_message(outcome: Option<&Result<ChannelOutcome, IngestError>>) -> Option<Ingested> {
    match outcome {
        Some(Ok(ChannelOutcome::Message(m))) if !m.duplicate => Some(*m),
        _ => None,
    }
}

async fn effect(
    st: &AppState,
    inbox: &Inbox,
    e: &Effect,
    outcome: Option<&Result<ChannelOutcome, IngestError>>,
    usage: &mut super::usage::Meterings<'_>,
    now: Timestamp,
) -> ApiResult<()> {
    match e {
        Effect::FetchProfile { customer, name } => {
            // Once per customer (and again when the channel renames them), only for a new
            // message: a redelivery fetches nothing.
            if let Some(m) = new_message(outcome)
                && st.config.webhooks.profile_sync
                && let Some(p) = st.store.contact_profile(m.contact_id).await?
                && contact::wants_profile(
                    p.synced_at.is_some(),
                    p.name.as_deref(),
                    p.name_source,
                    name.as_deref(),
                )
            {
                st.outbox.want_profile(ProfileJob {
                    inbox_id: inbox.id,
                    contact_id: m.contact_id,
                    external_id: customer.clone(),
                    name: name.clone(),
                    forced: false,
                });
            }
        }
        Effect::Reachable {
            customer,
            unreachable,
        } => {
            st.store
                .set_reachability(inbox.id, customer, *unreachable, now)
                .await?;
        }
        Effect::SharedDetail(value) => {
            if let Some(m) = new_message(outcome) {
                remember_shared_detail(st, m.contact_id, value).await;
            }
        }
        Effect::Usage(u) => {
            let stored = match outcome {
                Some(Ok(ChannelOutcome::Message(m))) => Some(m.message_id),
                _ => None,
            };
            usage.add(inbox, u, stored, now).await?;
        }
        Effect::Template(t) => {
            let update = TemplateUpdate {
                template_id: t.template_id.clone(),
                name: t.name.clone(),
                language: t.language.clone(),
                status: t.status.clone(),
                category: t.category.clone(),
            };
            st.store.update_template(&[inbox.id], &update).await?;
        }
        Effect::Warn { what, detail } => {
            tracing::warn!(inbox_id = %inbox.id, detail = %detail, "{what}");
        }
        Effect::EchoByText | Effect::Respond(_) => {}
    }
    Ok(())
}

/// Fills the contact's email or phone from what they shared, unless an agent already set one.
async fn remember_shared_detail(st: &AppState, contact: ContactId, value: &str) {
    let Ok(Some(mut c)) = st.store.contact(contact).await else {
        return;
    };
    if let Ok(e) = validate::Email::parse(value) {
        if c.email.is_some() {
            return;
        }
        c.email = Some(e.into_inner());
    } else if let Ok(p) = validate::Phone::parse(value) {
        if c.phone.is_some() {
            return;
        }
        c.phone = Some(p.into_inner());
    } else {
        return;
    }
    c.updated_at = st.clock.now();
    if let Err(e) = st.store.update_contact(&c).await {
        tracing::warn!(error = %e, "could not save a shared contact detail");
    }
}

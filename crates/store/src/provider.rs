//! What the WhatsApp, Zalo OA, Telegram and Shopee connectors need from the store beyond
//! [`crate::ChannelStore`] / [`crate::OutboxStore`]: inboxes found by their account, WhatsApp
//! templates and cost metering, identity links and reachability, message extras, and a
//! compare-and-set on inbox settings (rotating single-use refresh tokens). Two traits of their own
//! so a second backend adds them as a unit.

use crate::Result;
use async_trait::async_trait;
use serde::Serialize;
use switchboard_core::billing::{Charge, Tariff, Traffic};
use switchboard_core::*;

/// A WhatsApp message template as last synced from the provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredTemplate {
    pub name: String,
    pub language: String,
    pub template_id: Option<String>,
    /// `marketing`, `utility`, `authentication`.
    pub category: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...
    pub status: String,
    pub components: serde_json::Value,
    /// `positional` or `named`.
    pub parameter_format: String,
    pub synced_at: Timestamp,
}

/// A change a template webhook reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateUpdate {
    pub template_id: Option<String>,
    pub name: Option<String>,
    pub language: Option<String>,
    pub status: Option<String>,
    pub category: Option<String>,
}

#[async_trait]
pub trait ProviderStore: Send + Sync {
    /// The inbox of `channel` connected to `account`: a WhatsApp `phone_number_id`, a Zalo
    /// `oa_id`, a Shopee `shop_id`.
    async fn inbox_for_account(&self, channel: ChannelKind, account: &str)
    -> Result<Option<Inbox>>;
    /// The contact known by this channel id in this inbox.
    async fn contact_by_identity(
        &self,
        inbox: InboxId,
        external_id: &str,
    ) -> Result<Option<ContactId>>;
    /// WhatsApp inboxes (numbers) of one business account.
    async fn inboxes_for_business(&self, waba_id: &str) -> Result<Vec<Inbox>>;
    /// The contact's ids on this inbox's channel, oldest first.
    async fn identities_in(&self, contact: ContactId, inbox: InboxId) -> Result<Vec<String>>;
    async fn message_by_provider_id(
        &self,
        inbox: InboxId,
        provider_id: &str,
    ) -> Result<Option<Message>>;
    /// Merges `patch` (an object) into a message's extras and publishes `message.updated`.
    async fn merge_message_meta(
        &self,
        id: MessageId,
        patch: serde_json::Value,
        now: Timestamp,
    ) -> Result<()>;
    /// Public outbound messages of a conversation sent after `since` that did not fail,
    /// other than templates (Zalo counts its free consultation replies with this).
    async fn replies_since(&self, conv: ConversationId, since: Timestamp) -> Result<u32>;
    /// A message of this conversation being sent right now with exactly this text (to recognise a
    /// provider's echo of our own send before its answer came back).
    async fn sending_message_like(
        &self,
        conv: ConversationId,
        text: &str,
    ) -> Result<Option<MessageId>>;
    /// Replaces an inbox's settings only if `key` still holds `expected` (compare-and-set).
    async fn replace_settings_if(
        &self,
        inbox: InboxId,
        key: &str,
        expected: &str,
        settings: &serde_json::Value,
    ) -> Result<bool>;
    /// Marks a channel identity unreachable (`Some(reason)`) or reachable again (`None`).
    async fn set_reachability(
        &self,
        inbox: InboxId,
        external_id: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<()>;
    async fn reachability(&self, inbox: InboxId, external_id: &str) -> Result<Option<String>>;

    // --- WhatsApp templates
    /// Replaces the inbox's templates with a fresh sync.
    async fn replace_templates(&self, inbox: InboxId, templates: &[StoredTemplate]) -> Result<()>;
    async fn templates(&self, inbox: InboxId) -> Result<Vec<StoredTemplate>>;
    async fn template(
        &self,
        inbox: InboxId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>>;
    /// Applies a template webhook to the templates of these inboxes; returns how many changed.
    async fn update_template(&self, inboxes: &[InboxId], update: &TemplateUpdate) -> Result<usize>;
}

/// One event to meter (`core::billing`).
#[derive(Debug, Clone, PartialEq)]
pub struct MeterEvent {
    /// The WhatsApp number (phone number id's inbox).
    pub inbox_id: InboxId,
    /// The WhatsApp Business Account: free tiers and conversations are per business.
    pub business_id: String,
    /// The customer: `wa_id` or business-scoped user id.
    pub user_id: String,
    pub market: String,
    /// Unique per inbox: metering the same event twice records it once.
    pub event_key: String,
    pub message_id: Option<MessageId>,
    pub traffic: Traffic,
    /// The provider's own `pricing` object, kept for reconciliation.
    pub provider_pricing: Option<serde_json::Value>,
}

#[async_trait]
pub trait BillingStore: Send + Sync {
    /// Meters one event in one transaction: the customer's recent charges and the month's free
    /// tier use are read, `core::billing::meter` decides, the charge is written. An event metered
    /// before returns its stored charge.
    async fn meter_whatsapp(&self, e: &MeterEvent, tariff: &Tariff) -> Result<Charge> {
        self.meter_whatsapp_many(std::slice::from_ref(e), tariff)
            .await?
            .pop()
            .ok_or(crate::StoreError::NotFound)
    }
    /// Meters several events in one transaction (group commit), each exactly as
    /// [`ProviderStore::meter_whatsapp`] would, in order: later events see the charges of earlier
    /// ones. One charge per event.
    async fn meter_whatsapp_many(
        &self,
        events: &[MeterEvent],
        tariff: &Tariff,
    ) -> Result<Vec<Charge>>;
    /// A month's charges (`YYYY-MM`), of these inboxes (`None`: all), oldest first.
    async fn whatsapp_usage(&self, month: &str, inboxes: Option<&[InboxId]>)
    -> Result<Vec<Charge>>;
}

//! Customers' names and pictures from the channels: what a profile sync fetches, decides (by
//! `core::contact`) and keeps. One path for every provider: the provider's profile API where it
//! has one (Messenger, Instagram, Zalo, Telegram), else the name the webhook carried (WhatsApp,
//! Shopee). Runs off the webhook's hot path (the outbox worker), and at once when an agent
//! presses "sync from channel".
//!
//! Pictures are copied into the media store (`avatars/<file>`) once per picture (the provider's
//! URLs expire): only images by their bytes, at most [`MAX_PICTURE_BYTES`]. Where the platform's
//! policy forbids keeping the bytes (Instagram) the provider's URL is kept and shown instead.

use crate::clock::Clock;
use crate::media_store::MediaStore;
use crate::provider_api::Providers;
use std::sync::Arc;
use switchboard_channels::meta::Failure;
use switchboard_channels::provider::{MAX_PICTURE_BYTES, Picture, PictureSource, Profile};
use switchboard_core::contact;
use switchboard_core::{ContactId, InboxId};
use switchboard_store::{AvatarWrite, ContactProfile, ProfileWrite, Store};

/// One contact's profile to sync from one of its channel identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileJob {
    pub inbox_id: InboxId,
    pub contact_id: ContactId,
    pub external_id: String,
    /// The name the webhook carried (WhatsApp, Telegram, Shopee).
    pub name: Option<String>,
    /// The agent asked ("sync from channel"): the channel's name replaces even a typed one.
    pub forced: bool,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Synced {
    pub name_changed: bool,
    pub picture_changed: bool,
}

pub struct ProfileSync {
    store: Arc<dyn Store>,
    providers: Arc<Providers>,
    clock: Arc<dyn Clock>,
    media: MediaStore,
}

fn fail(reason: &'static str) -> Failure {
    switchboard_channels::provider::refused(reason)
}

impl ProfileSync {
    pub fn new(
        store: Arc<dyn Store>,
        providers: Arc<Providers>,
        clock: Arc<dyn Clock>,
        media: MediaStore,
    ) -> Self {
        Self {
            store,
            providers,
            clock,
            media,
        }
    }

    /// Fetches the profile and applies what `core::contact` decides: the name, a new picture
    /// (copied once), the customer's handle. A provider without a profile API gives the webhook's
    /// name only; a provider that failed leaves everything as it was.
    pub async fn run(&self, job: &ProfileJob) -> Result<Synced, Failure> {
        let inbox = self
            .store
            .inbox(job.inbox_id)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| fail("inbox_missing"))?;
        let current = self
            .store
            .contact_profile(job.contact_id)
            .await
            .map_err(|_| fail("store_failed"))?
            .ok_or_else(|| fail("contact_missing"))?;
        let has_api = switchboard_channels::for_channel(inbox.channel)
            .is_some_and(|p| p.profile_call(&inbox, &job.external_id).is_some());
        if !has_api && job.name.is_none() {
            return Err(fail("not_supported"));
        }
        let fetched = if has_api {
            self.providers.profile(&inbox, &job.external_id).await?
        } else {
            Profile::default()
        };
        let offered = fetched.name.as_deref().or(job.name.as_deref());
        let name = contact::channel_name(
            current.name.as_deref(),
            current.name_source,
            offered,
            job.forced,
        );
        let avatar = match &fetched.picture {
            Some(p) => self.picture(&inbox, &current, p).await,
            None => None,
        };
        let done = Synced {
            name_changed: name.is_some(),
            picture_changed: avatar.is_some(),
        };
        let replaced = match &avatar {
            Some(_) => current.avatar_file.clone(),
            None => None,
        };
        let now = self.clock.now();
        self.store
            .set_contact_profile(
                job.contact_id,
                &ProfileWrite {
                    name,
                    avatar,
                    synced_at: now,
                },
            )
            .await
            .map_err(|_| fail("store_failed"))?;
        if fetched.username.is_some()
            && let Err(e) = self
                .store
                .set_identity_username(job.inbox_id, &job.external_id, fetched.username.as_deref())
                .await
        {
            tracing::warn!(error = %e, "profile sync: keeping the username failed");
        }
        // The copy of the previous picture is no longer shown.
        if let Some(old) = replaced.as_deref() {
            let _ = self.media.delete(&avatar_key(old)).await;
        }
        Ok(done)
    }

    /// What to write for the provider's picture: nothing when our copy is of it already; its URL
    /// where the bytes may not be kept; else a fresh copy (on a failed copy, the URL while it
    /// lives, and the next sync tries again).
    async fn picture(
        &self,
        inbox: &switchboard_core::Inbox,
        current: &ContactProfile,
        p: &Picture,
    ) -> Option<AvatarWrite> {
        let url = match &p.source {
            PictureSource::Url(u) => Some(u.clone()),
            PictureSource::File(_) => None,
        };
        if !p.storable {
            let url = url?;
            let same = current.avatar_key.as_deref() == Some(p.key.as_str())
                && current.avatar_url.as_deref() == Some(url.as_str());
            return (!same).then(|| AvatarWrite::Linked {
                url,
                key: p.key.clone(),
            });
        }
        if !contact::picture_is_new(
            current.avatar_key.as_deref(),
            current.avatar_file.is_some(),
            &p.key,
        ) {
            return None;
        }
        match self.copy(inbox, &p.source).await {
            Ok((file, content_type)) => Some(AvatarWrite::Copied {
                file,
                content_type: content_type.to_owned(),
                key: p.key.clone(),
                url,
            }),
            Err(f) => {
                tracing::warn!(
                    reason = f.reason,
                    "profile sync: copying the picture failed"
                );
                // A URL that needs no token may be shown while it lives; a Telegram file URL
                // carries the bot's token and is never shown.
                url.filter(|_| current.avatar_file.is_none())
                    .map(|url| AvatarWrite::Linked {
                        url,
                        key: p.key.clone(),
                    })
            }
        }
    }

    /// Downloads the picture (bounded, an image by its bytes) into a new file of ours.
    async fn copy(
        &self,
        inbox: &switchboard_core::Inbox,
        source: &PictureSource,
    ) -> Result<(String, &'static str), Failure> {
        let url = self.providers.picture_url(inbox, source).await?;
        let (bytes, content_type) = self
            .providers
            .download_picture(&url, MAX_PICTURE_BYTES)
            .await?;
        let file = uuid::Uuid::now_v7().to_string();
        self.media
            .put(&avatar_key(&file), bytes.into())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not store a contact's picture");
                fail("store_failed")
            })?;
        Ok((file, content_type))
    }
}

/// Where our copy of a picture is in the media store.
pub fn avatar_key(file: &str) -> String {
    format!("avatars/{file}")
}

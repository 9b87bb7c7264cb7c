//! A message going out: who sends it, and what each channel can carry.
//!
//! Every sender — an agent typing, a bot, a timer's closing message, a rule, an integration —
//! sends through one command with an [`Author`]; the messaging-window policy decides on the
//! author's [`policy::Sender`], and the channel's [`Capabilities`] decide what fits.

use crate::conversation::Actor;
use crate::model::{ChannelKind, SenderKind};
use crate::policy;
use serde::Serialize;

/// Who sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// A person, through the workspace or the API. `automated` marks text sent by their bot or
    /// integration under their token: stricter rules, shown as a bot.
    Agent { actor: Actor, automated: bool },
    /// Switchboard itself: the out-of-hours reply, the closing message, timers and rules.
    Automation,
}

impl Author {
    /// How the messaging-window policy sees this author: only a person typing is `Human`.
    pub const fn policy_sender(self) -> policy::Sender {
        match self {
            Self::Agent {
                automated: false, ..
            } => policy::Sender::Human,
            _ => policy::Sender::Automation,
        }
    }

    /// How the thread shows the sender.
    pub const fn sender_kind(self) -> SenderKind {
        match self {
            Self::Agent {
                automated: false, ..
            } => SenderKind::Agent,
            Self::Agent {
                automated: true, ..
            } => SenderKind::Bot,
            Self::Automation => SenderKind::System,
        }
    }

    /// The person behind the message, if any.
    pub const fn actor(self) -> Option<Actor> {
        match self {
            Self::Agent { actor, .. } => Some(actor),
            Self::Automation => None,
        }
    }
}

/// How a channel measures a text's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "unit", content = "max")]
pub enum TextLimit {
    /// At most this many characters.
    Chars(usize),
    /// Fewer than this many characters (Messenger: "< 2000").
    CharsBelow(usize),
    /// At most this many bytes of UTF-8 (Instagram).
    Bytes(usize),
}

impl TextLimit {
    pub fn fits(self, text: &str) -> bool {
        match self {
            Self::Chars(n) => text.chars().count() <= n,
            Self::CharsBelow(n) => text.chars().count() < n,
            Self::Bytes(n) => text.len() <= n,
        }
    }

    /// The limit in words, for an error message.
    pub fn describe(self) -> String {
        match self {
            Self::Chars(n) => format!("at most {n} characters"),
            Self::CharsBelow(n) => format!("fewer than {n} characters"),
            Self::Bytes(n) => format!("at most {n} bytes"),
        }
    }
}

/// What one channel can carry (channels.md: the providers' documented limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub text: TextLimit,
    /// Files uploaded to Switchboard can be sent (live chat: the widget fetches them from us).
    pub uploaded_files: bool,
    /// Approved templates outside the window (WhatsApp).
    pub templates: bool,
    /// Comments that can be answered in public and in private (Pages, Instagram).
    pub comments: bool,
}

/// The capability table.
pub const fn capabilities(channel: ChannelKind) -> Capabilities {
    const BASE: Capabilities = Capabilities {
        text: TextLimit::Chars(crate::validate::MAX_TEXT_CHARS),
        uploaded_files: false,
        templates: false,
        comments: false,
    };
    match channel {
        ChannelKind::Livechat => Capabilities {
            uploaded_files: true,
            ..BASE
        },
        ChannelKind::Messenger => Capabilities {
            text: TextLimit::CharsBelow(2000),
            comments: true,
            ..BASE
        },
        ChannelKind::Instagram => Capabilities {
            text: TextLimit::Bytes(1000),
            comments: true,
            ..BASE
        },
        ChannelKind::Whatsapp => Capabilities {
            text: TextLimit::Chars(4096),
            templates: true,
            ..BASE
        },
        // channels.md documents no limit for Zalo's consultation messages; 2000 characters is
        // what the OA manager enforces (uncertain).
        ChannelKind::Zalo => Capabilities {
            text: TextLimit::Chars(2000),
            ..BASE
        },
        ChannelKind::Telegram => Capabilities {
            text: TextLimit::Chars(4096),
            ..BASE
        },
        ChannelKind::Shopee => Capabilities {
            text: TextLimit::Chars(1000),
            ..BASE
        },
    }
}

/// What the outbox does for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxJob {
    /// A Send API message to the customer's messaging id.
    Send,
    /// A Send API message to `recipient.comment_id` (one per comment).
    PrivateReply,
    /// A public reply under a comment.
    CommentReply,
}

impl OutboxJob {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::PrivateReply => "private_reply",
            Self::CommentReply => "comment_reply",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "send" => Self::Send,
            "private_reply" => Self::PrivateReply,
            "comment_reply" => Self::CommentReply,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AgentId;
    use crate::model::Role;

    #[test]
    fn text_limits_at_their_boundaries() {
        let fits = |c, s: &str| capabilities(c).text.fits(s);
        assert!(fits(ChannelKind::Messenger, &"a".repeat(1999)));
        assert!(!fits(ChannelKind::Messenger, &"a".repeat(2000)));
        // Instagram counts bytes: 500 two-byte letters fit, 501 do not.
        assert!(fits(ChannelKind::Instagram, &"ă".repeat(500)));
        assert!(!fits(ChannelKind::Instagram, &"ă".repeat(501)));
        for (channel, max) in [
            (ChannelKind::Whatsapp, 4096),
            (ChannelKind::Telegram, 4096),
            (ChannelKind::Zalo, 2000),
            (ChannelKind::Shopee, 1000),
            (ChannelKind::Livechat, 4096),
        ] {
            assert!(fits(channel, &"đ".repeat(max)), "{channel:?}");
            assert!(!fits(channel, &"đ".repeat(max + 1)), "{channel:?}");
        }
    }

    #[test]
    fn only_a_person_typing_is_a_human_sender() {
        let actor = Actor {
            agent_id: AgentId(uuid::Uuid::nil()),
            role: Role::Agent,
        };
        let typed = Author::Agent {
            actor,
            automated: false,
        };
        let bot = Author::Agent {
            actor,
            automated: true,
        };
        assert_eq!(typed.policy_sender(), policy::Sender::Human);
        assert_eq!(bot.policy_sender(), policy::Sender::Automation);
        assert_eq!(
            Author::Automation.policy_sender(),
            policy::Sender::Automation
        );
        assert_eq!(
            [typed, bot, Author::Automation].map(Author::sender_kind),
            [SenderKind::Agent, SenderKind::Bot, SenderKind::System]
        );
        assert_eq!(Author::Automation.actor(), None);
    }

    #[test]
    fn files_templates_and_comments_where_the_channel_has_them() {
        assert!(capabilities(ChannelKind::Livechat).uploaded_files);
        assert!(!capabilities(ChannelKind::Messenger).uploaded_files);
        assert!(capabilities(ChannelKind::Whatsapp).templates);
        assert!(capabilities(ChannelKind::Instagram).comments);
        assert!(!capabilities(ChannelKind::Telegram).comments);
    }
}

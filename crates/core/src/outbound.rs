//! A message going out: who sends it ([`Author`]), what it carries ([`Content`]), what each
//! channel can carry ([`Capabilities`]) and how content that does not fit is adapted ([`fit`]).
//!
//! Every sender — an agent typing, a bot, a timer's closing message, a rule, an integration —
//! sends through one command with an [`Author`] and a [`Content`]; [`decide`] asks the policy on
//! the content (the messaging window, with templates' own rows; the private-reply rule for a
//! private reply; nothing for a public comment reply), and the channel's [`Capabilities`] decide
//! what fits.

use crate::conversation::Actor;
use crate::ids::MessageId;
use crate::model::{ChannelKind, MessageKind, SenderKind, str_enum};
use crate::policy::{self, ChannelRules, Decision, Facts, PrivateReplyRefusal, Requested};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Who sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// A person, through the workspace or the API. `automated` marks text sent by their bot or
    /// integration under their token: stricter rules, shown as a bot.
    Agent { actor: Actor, automated: bool },
    /// Switchboard itself: the out-of-hours reply, the closing message, timers and rules.
    Automation,
    /// A flow's bot (shown as the bot; never a person, so never `HUMAN_AGENT`).
    Bot,
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
            Self::Bot => SenderKind::Bot,
        }
    }

    /// The person behind the message, if any.
    pub const fn actor(self) -> Option<Actor> {
        match self {
            Self::Agent { actor, .. } => Some(actor),
            Self::Automation | Self::Bot => None,
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
    /// Media by a public link or the provider's own media id (WhatsApp).
    pub linked_media: bool,
    /// Approved templates outside the window (WhatsApp).
    pub templates: bool,
    /// Comments that can be answered in public and in private (Pages, Instagram).
    pub comments: bool,
    /// Reply buttons and lists, and how many; `None`: they go out as a numbered text list.
    pub buttons: Option<ButtonLimits>,
}

/// How many choices a channel's buttons and lists carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ButtonLimits {
    pub buttons: usize,
    /// Rows of a list (WhatsApp's list message); 0: the channel has no lists.
    pub list_rows: usize,
    /// The longest title of a button, and of a list row (characters).
    pub button_title: usize,
    pub row_title: usize,
    /// The longest id a tap sends back, in bytes (Telegram's `callback_data`); `None`: ours
    /// (256 characters) is within the channel's.
    pub id_bytes: Option<usize>,
    /// What happens to choices these buttons cannot carry.
    pub beyond: Beyond,
}

/// What happens to choices that do not fit a channel's buttons (too many, a title or an id too
/// long, a list where the channel has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Beyond {
    /// Refused with the reason: the sender asked for this channel's own buttons (WhatsApp).
    Refuse,
    /// Sent as the numbered list, as on a channel without buttons, so that what went out before
    /// the channel had buttons still goes out (a flow's long titles, a list on Messenger).
    NumberedList,
}

/// Messenger's and Instagram's quick replies (§1.5, §2): at most 13, titles up to 20 characters,
/// one text each; no lists.
const QUICK_REPLIES: ButtonLimits = ButtonLimits {
    buttons: 13,
    list_rows: 0,
    button_title: 20,
    row_title: 0,
    id_bytes: None,
    beyond: Beyond::NumberedList,
};

/// The capability table.
pub const fn capabilities(channel: ChannelKind) -> Capabilities {
    const BASE: Capabilities = Capabilities {
        text: TextLimit::Chars(crate::validate::MAX_TEXT_CHARS),
        linked_media: false,
        templates: false,
        comments: false,
        buttons: None,
    };
    match channel {
        ChannelKind::Livechat => BASE,
        // Buttons go out as quick replies; a tap comes back as `meta.quick_reply_payload`.
        ChannelKind::Messenger => Capabilities {
            text: TextLimit::CharsBelow(2000),
            comments: true,
            buttons: Some(QUICK_REPLIES),
            ..BASE
        },
        // channels.md §2: "Quick replies ≤13", otherwise as Messenger.
        ChannelKind::Instagram => Capabilities {
            text: TextLimit::Bytes(1000),
            comments: true,
            buttons: Some(QUICK_REPLIES),
            ..BASE
        },
        // §3.2: up to 3 reply buttons (titles up to 20 characters), or a list of up to 10 rows
        // (titles up to 24).
        ChannelKind::Whatsapp => Capabilities {
            text: TextLimit::Chars(4096),
            linked_media: true,
            templates: true,
            buttons: Some(ButtonLimits {
                buttons: 3,
                list_rows: 10,
                button_title: 20,
                row_title: 24,
                id_bytes: None,
                beyond: Beyond::Refuse,
            }),
            ..BASE
        },
        // channels.md documents no limit for Zalo's consultation messages; 2000 characters is
        // what the OA manager enforces (uncertain).
        ChannelKind::Zalo => Capabilities {
            text: TextLimit::Chars(2000),
            ..BASE
        },
        // An inline keyboard, one button per row; a tap comes back as a `callback_query`
        // (`meta.callback_data`). `callback_data` is 1-64 bytes (Bot API), so longer ids go as
        // the numbered list. The Bot API documents no limit on a button's text; 100 buttons is
        // its limit on one keyboard (not in channels.md). No lists.
        ChannelKind::Telegram => Capabilities {
            text: TextLimit::Chars(4096),
            buttons: Some(ButtonLimits {
                buttons: 100,
                list_rows: 0,
                button_title: crate::validate::MAX_TEXT_CHARS,
                row_title: 0,
                id_bytes: Some(64),
                beyond: Beyond::NumberedList,
            }),
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

str_enum!(
    /// What kind of file a media message carries.
    MediaKind { Image = "image", Video = "video", Audio = "audio", Document = "document", Sticker = "sticker" }
);

/// Where a media message's file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// Uploaded to Switchboard (an attachment id); served to the customer by us.
    Uploaded(uuid::Uuid),
    /// A public link the provider fetches.
    Link(String),
    /// A file already uploaded to the provider (its media id).
    Hosted(String),
}

/// A file, with its caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    pub source: MediaSource,
    pub caption: Option<String>,
    pub filename: Option<String>,
}

impl Media {
    /// What the thread shows: an upload by its caption or name (its file is listed beside it);
    /// a linked file by its kind and caption.
    pub fn thread_text(&self) -> String {
        match (&self.source, &self.caption) {
            (MediaSource::Uploaded(_), Some(c)) => c.clone(),
            (MediaSource::Uploaded(_), None) => {
                self.filename.clone().unwrap_or_else(|| "file".into())
            }
            (_, Some(c)) => format!("[{}] {c}", self.kind),
            (_, None) => format!("[{}]", self.kind),
        }
    }
}

/// Parameters for a template, as the composer fills them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateArgs {
    #[serde(default)]
    pub header: Vec<String>,
    /// A link to the header's image / video / document.
    #[serde(default)]
    pub header_media_link: Option<String>,
    #[serde(default)]
    pub body: Vec<String>,
    /// URL-button suffixes by button index.
    #[serde(default)]
    pub buttons: Vec<ButtonArg>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonArg {
    pub index: usize,
    pub parameters: Vec<String>,
}

/// An approved template by name and language, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub parameters: TemplateArgs,
}

/// One choice offered to the customer: a reply button or a list row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A titled group of list rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<Choice>,
}

/// Reply buttons, or a list opened by a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Choices {
    Buttons(Vec<Choice>),
    List {
        button: String,
        sections: Vec<Section>,
    },
}

/// A message with choices (buttons or a list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interactive {
    pub header: Option<String>,
    pub body: String,
    pub footer: Option<String>,
    pub choices: Choices,
}

impl Interactive {
    /// Every choice, in order (a list's rows across its sections).
    pub fn all_choices(&self) -> Vec<&Choice> {
        match &self.choices {
            Choices::Buttons(b) => b.iter().collect(),
            Choices::List { sections, .. } => sections.iter().flat_map(|s| &s.rows).collect(),
        }
    }

    /// The text above the buttons where a channel's buttons carry one text only (quick replies,
    /// inline keyboards): the header, the body, then the footer after a blank line.
    pub fn text_without_choices(&self) -> String {
        let mut lines: Vec<&str> = Vec::new();
        if let Some(h) = &self.header {
            lines.push(h);
        }
        lines.push(&self.body);
        if let Some(f) = &self.footer {
            lines.push("");
            lines.push(f);
        }
        lines.join("\n")
    }

    /// The fallback where a channel has no buttons: the text, then the choices numbered from 1
    /// (a row's description after a dash), then the footer — the customer answers by number.
    pub fn numbered_text(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        if let Some(h) = &self.header {
            lines.push(h.clone());
        }
        lines.push(self.body.clone());
        lines.push(String::new());
        for (i, c) in self.all_choices().into_iter().enumerate() {
            lines.push(match &c.description {
                Some(d) => format!("{}. {} — {d}", i + 1, c.title),
                None => format!("{}. {}", i + 1, c.title),
            });
        }
        if let Some(f) = &self.footer {
            lines.push(String::new());
            lines.push(f.clone());
        }
        lines.join("\n")
    }
}

/// An answer to a customer's comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentReply {
    /// The provider's comment id.
    pub comment_id: String,
    /// The comment's message in the thread.
    pub message_id: MessageId,
    /// When the customer commented (the private-reply rule counts from it).
    pub commented_at: Timestamp,
    /// `true`: a private message to the commenter; `false`: a public reply under the comment.
    pub private: bool,
    pub text: String,
}

/// What a message going out carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Media(Media),
    Template(TemplateRef),
    Interactive(Interactive),
    CommentReply(CommentReply),
}

impl Content {
    /// How the thread stores it.
    pub const fn message_kind(&self) -> MessageKind {
        match self {
            Self::Media(_) => MessageKind::Media,
            Self::CommentReply(r) if !r.private => MessageKind::Comment,
            _ => MessageKind::Text,
        }
    }

    /// The comment a private reply answers.
    pub fn private_reply_to(&self) -> Option<&CommentReply> {
        match self {
            Self::CommentReply(r) if r.private => Some(r),
            _ => None,
        }
    }
}

/// Why content cannot go out on a channel as it is and has no fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    /// The text (or the fallback's text) is longer than the channel takes.
    TextTooLong(TextLimit),
    /// The channel does not carry this kind of content at all (`what`: templates, media, comments).
    NotSupported(&'static str),
    /// More choices than the channel's buttons or list take.
    TooManyChoices { max: usize },
    /// A choice's title is longer than the channel's buttons or rows show.
    ChoiceTitleTooLong { max: usize },
    /// A choice's id is empty or longer than a tap can send back (bytes).
    ChoiceIdTooLong { max: usize },
}

/// How content goes out on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// As it is (buttons as the channel's own).
    AsIs,
    /// Buttons as this numbered text list instead: the channel has no buttons (`because: None`),
    /// or these choices do not fit them (why).
    NumberedList {
        text: String,
        because: Option<Unfit>,
    },
}

impl ButtonLimits {
    /// Whether these buttons carry the choices as they are.
    pub fn carry(&self, i: &Interactive) -> Result<(), Unfit> {
        let (max, title) = match i.choices {
            Choices::Buttons(_) => (self.buttons, self.button_title),
            Choices::List { .. } if self.list_rows == 0 => {
                return Err(Unfit::NotSupported("lists"));
            }
            Choices::List { .. } => (self.list_rows, self.row_title),
        };
        let choices = i.all_choices();
        if choices.is_empty() {
            return Err(Unfit::NotSupported("buttons without choices"));
        }
        if choices.len() > max {
            return Err(Unfit::TooManyChoices { max });
        }
        if choices.iter().any(|c| c.title.chars().count() > title) {
            return Err(Unfit::ChoiceTitleTooLong { max: title });
        }
        if let Some(max) = self.id_bytes
            && choices.iter().any(|c| c.id.is_empty() || c.id.len() > max)
        {
            return Err(Unfit::ChoiceIdTooLong { max });
        }
        Ok(())
    }
}

/// What an automatic sender (a flow's bot) sends for `content` on `channel`: nobody is there to
/// shorten buttons the channel refuses, so reply buttons that do not fit become a list where the
/// channel has one that fits (WhatsApp: 4–10 choices, or titles up to 24), else the numbered list.
/// Anything else is left as it is (the send command's checks still apply).
pub fn for_automation(channel: ChannelKind, content: Content, list_button: &str) -> Content {
    let Content::Interactive(i) = &content else {
        return content;
    };
    if fit(channel, &content).is_ok() {
        return content;
    }
    if let Choices::Buttons(rows) = &i.choices {
        let list = Content::Interactive(Interactive {
            choices: Choices::List {
                button: list_button.to_owned(),
                sections: vec![Section {
                    title: None,
                    rows: rows.clone(),
                }],
            },
            ..i.clone()
        });
        if matches!(fit(channel, &list), Ok(Fit::AsIs)) {
            return list;
        }
    }
    Content::Text(i.numbered_text())
}

/// Whether `content` fits `channel` (the capability table), and in what form.
pub fn fit(channel: ChannelKind, content: &Content) -> Result<Fit, Unfit> {
    let caps = capabilities(channel);
    let text_fits = |t: &str| {
        if caps.text.fits(t) {
            Ok(())
        } else {
            Err(Unfit::TextTooLong(caps.text))
        }
    };
    match content {
        Content::Text(t) => text_fits(t).map(|()| Fit::AsIs),
        Content::Media(m) => match m.source {
            // Every channel sends files uploaded to us (live chat: the widget fetches them;
            // providers fetch a signed link of ours or take an upload); which kinds and sizes is
            // `media_limits`' table.
            MediaSource::Uploaded(_) => Ok(Fit::AsIs),
            _ if caps.linked_media => Ok(Fit::AsIs),
            _ => Err(Unfit::NotSupported("media")),
        },
        Content::Template(_) if caps.templates => Ok(Fit::AsIs),
        Content::Template(_) => Err(Unfit::NotSupported("templates")),
        Content::CommentReply(r) if caps.comments => text_fits(&r.text).map(|()| Fit::AsIs),
        Content::CommentReply(_) => Err(Unfit::NotSupported("comments")),
        Content::Interactive(i) => {
            // The fallback obeys the channel's text limit like any text.
            let numbered = |because| {
                let text = i.numbered_text();
                text_fits(&text).map(|()| Fit::NumberedList { text, because })
            };
            let Some(limits) = caps.buttons else {
                return numbered(None);
            };
            match limits.carry(i) {
                Ok(()) => text_fits(&i.text_without_choices()).map(|()| Fit::AsIs),
                Err(u) => match limits.beyond {
                    Beyond::Refuse => Err(u),
                    Beyond::NumberedList => numbered(Some(u)),
                },
            }
        }
    }
}

/// The policy's answer for this content from this author: the messaging window for messages
/// (`purpose` says what a free-form message is for; a template is decided by the template rows,
/// so it may go out after the window), the private-reply rule for a private reply (the same for
/// every sender: once per comment, within the channel's limit after the comment), and nothing
/// for a public reply under a comment (comments have no window).
#[allow(clippy::too_many_arguments)]
pub fn decide(
    rules: &ChannelRules,
    facts: Facts,
    now: Timestamp,
    author: Author,
    content: &Content,
    purpose: policy::Content,
    requested: Requested,
    private_reply_sent: bool,
) -> Result<Decision, PrivateReplyRefusal> {
    let free = Decision::Allowed {
        messaging_type: None,
        tag: None,
        paid: false,
    };
    let purpose = match content {
        Content::CommentReply(r) if r.private => {
            policy::may_private_reply(rules, r.commented_at, now, private_reply_sent)?;
            return Ok(free);
        }
        Content::CommentReply(_) => return Ok(free),
        Content::Template(_) => policy::Content::Template,
        _ => purpose,
    };
    Ok(policy::decide(
        rules,
        facts,
        now,
        author.policy_sender(),
        purpose,
        requested,
    ))
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
        assert_eq!(Author::Bot.policy_sender(), policy::Sender::Automation);
        assert_eq!(Author::Bot.sender_kind(), SenderKind::Bot);
        assert_eq!(Author::Bot.actor(), None);
    }

    #[test]
    fn templates_and_comments_where_the_channel_has_them() {
        assert!(capabilities(ChannelKind::Whatsapp).templates);
        assert!(capabilities(ChannelKind::Instagram).comments);
        assert!(!capabilities(ChannelKind::Telegram).comments);
    }

    fn choice(id: &str, title: &str) -> Choice {
        Choice {
            id: id.into(),
            title: title.into(),
            description: None,
        }
    }

    fn buttons(n: usize) -> Interactive {
        Interactive {
            header: None,
            body: "Còn cần không?".into(),
            footer: None,
            choices: Choices::Buttons((1..=n).map(|i| choice(&i.to_string(), "Có")).collect()),
        }
    }

    fn list(rows: usize) -> Interactive {
        Interactive {
            choices: Choices::List {
                button: "Chọn".into(),
                sections: vec![Section {
                    title: None,
                    rows: (1..=rows).map(|i| choice(&i.to_string(), "M")).collect(),
                }],
            },
            ..buttons(0)
        }
    }

    fn comment(private: bool, commented_at: Timestamp) -> Content {
        Content::CommentReply(CommentReply {
            comment_id: "111_1".into(),
            message_id: MessageId(uuid::Uuid::nil()),
            commented_at,
            private,
            text: "Dạ".into(),
        })
    }

    fn media(source: MediaSource) -> Content {
        Content::Media(Media {
            kind: MediaKind::Image,
            source,
            caption: None,
            filename: None,
        })
    }

    type Answer = Result<Fit, Unfit>;

    #[test]
    fn what_each_channel_carries() {
        use ChannelKind as C;
        let template = Content::Template(TemplateRef {
            name: "order_update".into(),
            language: "vi".into(),
            parameters: TemplateArgs::default(),
        });
        let upload = media(MediaSource::Uploaded(uuid::Uuid::nil()));
        let link = media(MediaSource::Link("https://x.test/a.jpg".into()));
        let reply = comment(false, Timestamp(0));
        let numbered = Ok(Fit::NumberedList {
            text: buttons(2).numbered_text(),
            because: None,
        });
        // channel, upload, link, template, comment reply, two buttons
        type Row = (C, Answer, Answer, Answer, Answer, Answer);
        let table: [Row; 7] = [
            (
                C::Livechat,
                Ok(Fit::AsIs),
                Err(Unfit::NotSupported("media")),
                Err(Unfit::NotSupported("templates")),
                Err(Unfit::NotSupported("comments")),
                numbered.clone(),
            ),
            (
                C::Messenger,
                Ok(Fit::AsIs),
                Err(Unfit::NotSupported("media")),
                Err(Unfit::NotSupported("templates")),
                Ok(Fit::AsIs),
                Ok(Fit::AsIs),
            ),
            (
                C::Instagram,
                Ok(Fit::AsIs),
                Err(Unfit::NotSupported("media")),
                Err(Unfit::NotSupported("templates")),
                Ok(Fit::AsIs),
                Ok(Fit::AsIs),
            ),
            (
                C::Whatsapp,
                Ok(Fit::AsIs),
                Ok(Fit::AsIs),
                Ok(Fit::AsIs),
                Err(Unfit::NotSupported("comments")),
                Ok(Fit::AsIs),
            ),
            (
                C::Zalo,
                Ok(Fit::AsIs),
                Err(Unfit::NotSupported("media")),
                Err(Unfit::NotSupported("templates")),
                Err(Unfit::NotSupported("comments")),
                numbered.clone(),
            ),
            (
                C::Telegram,
                Ok(Fit::AsIs),
                Err(Unfit::NotSupported("media")),
                Err(Unfit::NotSupported("templates")),
                Err(Unfit::NotSupported("comments")),
                Ok(Fit::AsIs),
            ),
            (
                C::Shopee,
                Ok(Fit::AsIs),
                Err(Unfit::NotSupported("media")),
                Err(Unfit::NotSupported("templates")),
                Err(Unfit::NotSupported("comments")),
                numbered,
            ),
        ];
        for (channel, up, ln, tpl, cr, btn) in table {
            assert_eq!(fit(channel, &upload), up, "{channel:?} upload");
            assert_eq!(fit(channel, &link), ln, "{channel:?} link");
            assert_eq!(fit(channel, &template), tpl, "{channel:?} template");
            assert_eq!(fit(channel, &reply), cr, "{channel:?} comment reply");
            assert_eq!(
                fit(channel, &Content::Interactive(buttons(2))),
                btn,
                "{channel:?} buttons"
            );
        }
    }

    #[test]
    fn whatsapp_takes_three_buttons_and_ten_rows() {
        let wa = |i: Interactive| fit(ChannelKind::Whatsapp, &Content::Interactive(i));
        assert_eq!(wa(buttons(3)), Ok(Fit::AsIs));
        assert_eq!(wa(buttons(4)), Err(Unfit::TooManyChoices { max: 3 }));
        assert_eq!(wa(list(10)), Ok(Fit::AsIs));
        assert_eq!(wa(list(11)), Err(Unfit::TooManyChoices { max: 10 }));
        let titled = |title: &str| Interactive {
            choices: Choices::Buttons(vec![choice("a", title)]),
            ..buttons(0)
        };
        assert_eq!(wa(titled(&"ă".repeat(20))), Ok(Fit::AsIs));
        assert_eq!(
            wa(titled(&"ă".repeat(21))),
            Err(Unfit::ChoiceTitleTooLong { max: 20 })
        );
        // Where buttons become a numbered list, a long title is just text.
        assert!(matches!(
            fit(
                ChannelKind::Zalo,
                &Content::Interactive(titled(&"ă".repeat(21)))
            ),
            Ok(Fit::NumberedList { because: None, .. })
        ));
        // WhatsApp's text under the buttons obeys its text limit too.
        let long = Interactive {
            body: "a".repeat(4097),
            ..buttons(1)
        };
        assert_eq!(wa(long), Err(Unfit::TextTooLong(TextLimit::Chars(4096))));
    }

    /// What does not fit a channel's buttons goes as the numbered list, saying why.
    fn numbered_because(i: &Interactive, u: Unfit) -> Answer {
        Ok(Fit::NumberedList {
            text: i.numbered_text(),
            because: Some(u),
        })
    }

    #[test]
    fn messenger_and_instagram_take_thirteen_quick_replies_of_twenty_characters() {
        for channel in [ChannelKind::Messenger, ChannelKind::Instagram] {
            let go = |i: &Interactive| fit(channel, &Content::Interactive(i.clone()));
            assert_eq!(go(&buttons(13)), Ok(Fit::AsIs), "{channel:?}");
            let many = buttons(14);
            assert_eq!(
                go(&many),
                numbered_because(&many, Unfit::TooManyChoices { max: 13 }),
                "{channel:?}"
            );
            let titled = |title: &str| Interactive {
                choices: Choices::Buttons(vec![choice("a", title)]),
                ..buttons(0)
            };
            assert_eq!(go(&titled(&"ă".repeat(20))), Ok(Fit::AsIs));
            let long = titled(&"ă".repeat(21));
            assert_eq!(
                go(&long),
                numbered_because(&long, Unfit::ChoiceTitleTooLong { max: 20 })
            );
            // A list has no quick-reply form (no descriptions, no sections): numbered.
            let rows = list(3);
            assert_eq!(
                go(&rows),
                numbered_because(&rows, Unfit::NotSupported("lists"))
            );
            // Ids are ours (at most 256 characters), well within Meta's payloads.
            let id = Interactive {
                choices: Choices::Buttons(vec![choice(&"x".repeat(256), "Có")]),
                ..buttons(0)
            };
            assert_eq!(go(&id), Ok(Fit::AsIs));
        }
        // The text above the quick replies obeys the channel's text limit (Instagram: bytes).
        let text = |body: String| Interactive { body, ..buttons(2) };
        let ig = |i: Interactive| fit(ChannelKind::Instagram, &Content::Interactive(i));
        assert_eq!(ig(text("ă".repeat(500))), Ok(Fit::AsIs));
        assert_eq!(
            ig(text("ă".repeat(501))),
            Err(Unfit::TextTooLong(TextLimit::Bytes(1000)))
        );
    }

    #[test]
    fn telegram_takes_ids_of_up_to_64_bytes() {
        let tg = |i: &Interactive| fit(ChannelKind::Telegram, &Content::Interactive(i.clone()));
        let with_id = |id: &str| Interactive {
            choices: Choices::Buttons(vec![choice(id, "Có"), choice("b", "Không")]),
            ..buttons(0)
        };
        assert_eq!(tg(&with_id(&"x".repeat(64))), Ok(Fit::AsIs));
        // Bytes, not characters: 32 two-byte letters fit, 33 do not.
        assert_eq!(tg(&with_id(&"ă".repeat(32))), Ok(Fit::AsIs));
        for id in ["x".repeat(65), "ă".repeat(33)] {
            let i = with_id(&id);
            assert_eq!(
                tg(&i),
                numbered_because(&i, Unfit::ChoiceIdTooLong { max: 64 })
            );
        }
        assert_eq!(tg(&buttons(100)), Ok(Fit::AsIs));
        let many = buttons(101);
        assert_eq!(
            tg(&many),
            numbered_because(&many, Unfit::TooManyChoices { max: 100 })
        );
        let rows = list(2);
        assert_eq!(
            tg(&rows),
            numbered_because(&rows, Unfit::NotSupported("lists"))
        );
        // Long titles are the customer's phone's to shorten.
        let long = Interactive {
            choices: Choices::Buttons(vec![choice("a", &"ă".repeat(200))]),
            ..buttons(0)
        };
        assert_eq!(tg(&long), Ok(Fit::AsIs));
    }

    #[test]
    fn the_text_above_the_buttons_keeps_the_header_and_the_footer() {
        let i = Interactive {
            header: Some("Áo thun".into()),
            footer: Some("Shop Lan".into()),
            ..buttons(2)
        };
        assert_eq!(
            i.text_without_choices(),
            "Áo thun\nCòn cần không?\n\nShop Lan"
        );
        assert_eq!(buttons(2).text_without_choices(), "Còn cần không?");
    }

    #[test]
    fn buttons_without_buttons_are_a_numbered_list() {
        let i = Interactive {
            header: Some("Áo thun".into()),
            body: "Chọn size:".into(),
            footer: Some("Trả lời bằng số".into()),
            choices: Choices::List {
                button: "Chọn".into(),
                sections: vec![
                    Section {
                        title: Some("Nhỏ".into()),
                        rows: vec![Choice {
                            description: Some("45-50kg".into()),
                            ..choice("s", "Size S")
                        }],
                    },
                    Section {
                        title: None,
                        rows: vec![choice("m", "Size M"), choice("l", "Size L")],
                    },
                ],
            },
        };
        assert_eq!(
            i.numbered_text(),
            "Áo thun\nChọn size:\n\n1. Size S — 45-50kg\n2. Size M\n3. Size L\n\nTrả lời bằng số"
        );
        assert_eq!(
            fit(ChannelKind::Shopee, &Content::Interactive(buttons(2))),
            Ok(Fit::NumberedList {
                text: "Còn cần không?\n\n1. Có\n2. Có".into(),
                because: None
            })
        );
        // The fallback obeys the channel's text limit like any text.
        let long = Interactive {
            body: "a".repeat(995),
            ..buttons(2)
        };
        assert_eq!(
            fit(ChannelKind::Shopee, &Content::Interactive(long)),
            Err(Unfit::TextTooLong(TextLimit::Chars(1000)))
        );
    }

    #[test]
    fn the_policy_decides_on_the_content() {
        use policy::{DAY_MS, MessagingType, RefusalReason};
        let now = Timestamp(1_800_000_000_000);
        let day_ago = |d: i64| Timestamp(now.0 - d * DAY_MS - 1000);
        let wa = policy::rules_for(ChannelKind::Whatsapp);
        let late = Facts::since(Some(day_ago(1)));
        let go = |rules: &ChannelRules, facts, author, content: &Content, sent| {
            decide(
                rules,
                facts,
                now,
                author,
                content,
                policy::Content::Reply,
                Requested::default(),
                sent,
            )
        };
        let template = Content::Template(TemplateRef {
            name: "order_update".into(),
            language: "vi".into(),
            parameters: TemplateArgs::default(),
        });
        // WhatsApp after 24 h: automation's template goes out, its text does not.
        assert_eq!(
            go(&wa, late, Author::Automation, &template, false),
            Ok(Decision::Allowed {
                messaging_type: Some(MessagingType::Template),
                tag: None,
                paid: false
            })
        );
        assert!(matches!(
            go(
                &wa,
                late,
                Author::Automation,
                &Content::Text("hi".into()),
                false
            ),
            Ok(Decision::Refused {
                reason: RefusalReason::TemplateRequired,
                ..
            })
        ));
        // Buttons are a free-form message: refused after 24 h too.
        assert!(matches!(
            go(
                &wa,
                late,
                Author::Automation,
                &Content::Interactive(buttons(2)),
                false
            ),
            Ok(Decision::Refused { .. })
        ));
        // Messenger's private reply: once, within 7 days of the comment, for every sender.
        let fb = policy::rules_for(ChannelKind::Messenger);
        let never = Facts::since(None);
        assert_eq!(
            go(
                &fb,
                never,
                Author::Automation,
                &comment(true, day_ago(6)),
                false
            ),
            Ok(Decision::Allowed {
                messaging_type: None,
                tag: None,
                paid: false
            })
        );
        assert_eq!(
            go(
                &fb,
                never,
                Author::Automation,
                &comment(true, day_ago(7)),
                false
            ),
            Err(PrivateReplyRefusal::TooLate)
        );
        assert_eq!(
            go(
                &fb,
                never,
                Author::Automation,
                &comment(true, day_ago(1)),
                true
            ),
            Err(PrivateReplyRefusal::AlreadySent)
        );
        // A public reply under a comment has no window.
        assert!(matches!(
            go(
                &fb,
                never,
                Author::Automation,
                &comment(false, day_ago(30)),
                false
            ),
            Ok(Decision::Allowed { .. })
        ));
    }

    #[test]
    fn what_the_thread_stores() {
        assert_eq!(
            comment(false, Timestamp(0)).message_kind(),
            MessageKind::Comment
        );
        assert_eq!(
            comment(true, Timestamp(0)).message_kind(),
            MessageKind::Text
        );
        assert_eq!(
            media(MediaSource::Hosted("M1".into())).message_kind(),
            MessageKind::Media
        );
        let m = |source, caption: Option<&str>, filename: Option<&str>| Media {
            kind: MediaKind::Image,
            source,
            caption: caption.map(str::to_owned),
            filename: filename.map(str::to_owned),
        };
        let up = MediaSource::Uploaded(uuid::Uuid::nil());
        assert_eq!(
            m(up.clone(), Some("mẫu"), Some("a.jpg")).thread_text(),
            "mẫu"
        );
        assert_eq!(m(up, None, Some("a.jpg")).thread_text(), "a.jpg");
        let link = MediaSource::Link("https://x.test/a.jpg".into());
        assert_eq!(
            m(link.clone(), Some("mẫu"), None).thread_text(),
            "[image] mẫu"
        );
        assert_eq!(m(link, None, None).thread_text(), "[image]");
    }

    #[test]
    fn a_bots_buttons_that_whatsapp_refuses_become_a_list_or_a_numbered_list() {
        let choices = |n: usize, title: &str| {
            Content::Interactive(Interactive {
                header: None,
                body: "Chọn size".into(),
                footer: None,
                choices: Choices::Buttons(
                    (0..n)
                        .map(|k| Choice {
                            id: format!("c{k}"),
                            title: format!("{title} {k}"),
                            description: None,
                        })
                        .collect(),
                ),
            })
        };
        let wa = ChannelKind::Whatsapp;
        // Three fit as buttons: unchanged.
        assert_eq!(
            for_automation(wa, choices(3, "Size"), "Chọn"),
            choices(3, "Size")
        );
        // Five: a list of five rows behind a "Chọn" button.
        let Content::Interactive(five) = for_automation(wa, choices(5, "Size"), "Chọn") else {
            panic!("a list")
        };
        assert!(
            matches!(&five.choices, Choices::List { button, sections } if button == "Chọn" && sections[0].rows.len() == 5)
        );
        assert_eq!(fit(wa, &Content::Interactive(five)), Ok(Fit::AsIs));
        // Eleven, or titles over a list row's 24 characters: the numbered list.
        assert!(
            matches!(for_automation(wa, choices(11, "Size"), "Chọn"), Content::Text(t) if t.contains("11. Size 10"))
        );
        let long = "Áo thun cổ tròn tay ngắn màu";
        assert!(matches!(
            for_automation(wa, choices(2, long), "Chọn"),
            Content::Text(_)
        ));
        // Other content is never touched.
        let text = Content::Text("x".repeat(5000));
        assert_eq!(for_automation(wa, text.clone(), "Chọn"), text);
    }
}

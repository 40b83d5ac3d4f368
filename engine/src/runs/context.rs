//! Fitting a conversation into the model's context window. Before every model call the
//! request is measured; when it would not fit, the agent's rule decides: the oldest
//! messages are summarised by the model (the summary goes first in their place), left out
//! (a note says so), or the answer fails with a message naming the window. Either way
//! the answer's transcript gets a [`ContextCut`], and later answers start after the
//! newest cut on their branch, so a conversation is not summarised again at every turn.
//!
//! Tokens are estimated, on the high side: a token per three bytes (English text runs
//! near four, code and other scripts nearer three) and a few per message for framing.

use model::agents::ContextRule;
use model::chat::{Block, ContextCut, Message, Role};

/// What an image is counted as, in tokens.
pub const IMAGE_TOKENS: u64 = 1_600;

/// What a summary may take, in tokens.
pub const SUMMARY_TOKENS: u32 = 800;

/// The instructions for writing a summary.
pub const SUMMARY_PROMPT: &str = "You summarise conversations between a user and an AI assistant so that the \
     assistant can carry on without them. Write a concise summary of the conversation you are given: the facts, \
     names, numbers, decisions, code and open questions the assistant needs, in plain prose. Do not answer or \
     continue it.";

/// One stored message's worth of history: a person's message, or an answer with its tool
/// calls and their results (which must stay together).
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    /// The stored message (empty for a request's own messages over the API).
    pub id: String,
    pub messages: Vec<Message>,
    /// It stands for earlier messages left out (a summary or the note about them).
    pub lead: bool,
    /// The messages it stands for: 1, or those a lead replaced.
    pub stands_for: u32,
}

impl Turn {
    pub fn new(id: impl Into<String>, messages: Vec<Message>) -> Self {
        Self { id: id.into(), messages, lead: false, stands_for: 1 }
    }

    /// The turn that stands in for what `cut` left out.
    pub fn lead(cut: &ContextCut) -> Self {
        Self {
            id: cut.through.clone(),
            messages: vec![Message::user(&lead_text(cut))],
            lead: true,
            stands_for: cut.dropped,
        }
    }
}

/// What the model reads in place of the messages a cut left out.
pub fn lead_text(cut: &ContextCut) -> String {
    let n = cut.dropped;
    let s = if n == 1 { "" } else { "s" };
    if cut.summary.is_empty() {
        format!("[{n} earlier message{s} of this conversation were left out to fit the model's context window.]")
    } else {
        format!(
            "[A summary of {n} earlier message{s} of this conversation, which no longer fit the model's context \
             window:]\n{}",
            cut.summary
        )
    }
}

fn block_bytes(b: &Block) -> usize {
    match b {
        Block::Text { text } => text.len(),
        Block::ToolUse { id, name, input } => id.len() + name.len() + input.to_string().len() + 16,
        Block::ToolResult { tool_use_id, content, .. } => tool_use_id.len() + content.len() + 16,
        // Providers count an image by its size in pixels, at most about 1,600 tokens.
        Block::Image { .. } => IMAGE_TOKENS as usize * 3,
    }
}

/// Estimated tokens of `messages`.
pub fn estimate(messages: &[Message]) -> u64 {
    messages.iter().map(|m| 6 + m.content.iter().map(block_bytes).sum::<usize>().div_ceil(3) as u64).sum()
}

/// Estimated tokens of some text (a system prompt, tool definitions).
pub fn estimate_text(text: &str) -> u64 {
    text.len().div_ceil(3) as u64
}

fn turns_tokens(turns: &[Turn]) -> u64 {
    turns.iter().map(|t| estimate(&t.messages)).sum()
}

/// The room a model call has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// The smallest window of the agent's models.
    pub window: u64,
    /// The output asked for: the agent's limit, at most half the window.
    pub max_tokens: u32,
    /// What the messages may take: the window less the output, the system prompt, the
    /// tool definitions and a margin for the estimate.
    pub budget: u64,
}

impl Room {
    pub fn new(window: u64, max_output_tokens: u32, fixed: u64) -> Self {
        let max_tokens = u64::from(max_output_tokens).min(window / 2).max(1);
        let budget = window.saturating_sub(max_tokens).saturating_sub(window / 50).saturating_sub(fixed);
        Self { window, max_tokens: max_tokens as u32, budget }
    }
}

/// What to do about a request that does not fit.
#[derive(Debug, PartialEq)]
pub enum Plan {
    Fits,
    /// Leave out the oldest `drop` turns (and summarise them, by the rule).
    Cut {
        drop: usize,
    },
    /// Nothing may be left out (the rule refuses) or leaving out all but the newest turn
    /// is not enough: `need` tokens for `budget`.
    TooLong {
        need: u64,
        refused: bool,
    },
}

/// How to make `history` and the answer's own `messages` fit `room` under `rule`.
pub fn plan(history: &[Turn], own: &[Message], room: Room, rule: ContextRule) -> Plan {
    let own = estimate(own);
    let need = turns_tokens(history) + own;
    if need <= room.budget {
        return Plan::Fits;
    }
    if rule == ContextRule::Refuse {
        return Plan::TooLong { need, refused: true };
    }
    // The lead that takes the dropped turns' place, summary or note.
    let reserve = if rule == ContextRule::Summarize { u64::from(SUMMARY_TOKENS) + 40 } else { 40 };
    // The newest turn (the question) always stays.
    let mut rest = need;
    for (i, t) in history.iter().enumerate().take(history.len().saturating_sub(1)) {
        rest -= estimate(&t.messages);
        if rest + reserve <= room.budget {
            return Plan::Cut { drop: i + 1 };
        }
    }
    Plan::TooLong { need, refused: false }
}

/// The turns as the text a summary is written from, at most `max_bytes` of it: an earlier
/// summary among them whole, then the newest part of the rest.
pub fn summary_source(turns: &[Turn], max_bytes: usize) -> String {
    let (leads, rest): (Vec<&Turn>, Vec<&Turn>) = turns.iter().partition(|t| t.lead);
    let mut head = String::new();
    for m in leads.iter().flat_map(|t| &t.messages) {
        head.push_str(&m.text());
        head.push_str("\n\n");
    }
    let head = cut(&head, max_bytes).to_owned();
    let mut out = String::new();
    for m in rest.iter().flat_map(|t| &t.messages) {
        let who = if m.role == Role::User { "User" } else { "Assistant" };
        for b in &m.content {
            match b {
                Block::Text { text } => out.push_str(&format!("{who}: {text}\n\n")),
                Block::ToolUse { name, input, .. } => {
                    out.push_str(&format!("Assistant called the tool {name} with {}\n\n", cut(&input.to_string(), 400)))
                }
                Block::ToolResult { content, .. } => out.push_str(&format!("Tool result: {}\n\n", cut(content, 600))),
                Block::Image { .. } => out.push_str(&format!("{who}: [an image]\n\n")),
            }
        }
    }
    let room = max_bytes - head.len();
    if out.len() > room {
        let mut start = out.len() - room;
        while !out.is_char_boundary(start) {
            start += 1;
        }
        out.drain(..start);
    }
    head + &out
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The messages of `history`, a lead merged into a person's message right after it (so
/// that roles alternate for providers that insist).
pub fn assemble(history: &[Turn]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut pending_lead: Option<Message> = None;
    for t in history {
        for m in &t.messages {
            if let Some(lead) = pending_lead.take() {
                let plain = m.role == Role::User && m.content.iter().all(|b| matches!(b, Block::Text { .. }));
                if plain {
                    let mut merged = lead;
                    merged.content.extend(m.content.iter().cloned());
                    out.push(merged);
                    continue;
                }
                out.push(lead);
            }
            if t.lead {
                pending_lead = Some(m.clone());
            } else {
                out.push(m.clone());
            }
        }
    }
    out.extend(pending_lead);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(id: &str, role: Role, bytes: usize) -> Turn {
        Turn::new(id, vec![Message { role, content: vec![Block::Text { text: "x".repeat(bytes) }] }])
    }

    #[test]
    fn the_oldest_turns_go_first_and_the_question_always_stays() {
        let history = vec![turn("1", Role::User, 1800), turn("2", Role::Assistant, 4200), turn("3", Role::User, 3000)];
        let room = Room::new(4000, 1000, 0);
        assert_eq!((room.max_tokens, room.budget), (1000, 2920));
        assert_eq!(plan(&history, &[], room, ContextRule::DropOldest), Plan::Cut { drop: 1 });
        assert_eq!(plan(&history, &[], room, ContextRule::Summarize), Plan::Cut { drop: 2 });
        assert!(matches!(plan(&history, &[], room, ContextRule::Refuse), Plan::TooLong { refused: true, .. }));
        assert_eq!(plan(&history[2..], &[], room, ContextRule::Refuse), Plan::Fits);
        let huge = vec![turn("1", Role::User, 30_000)];
        assert!(matches!(plan(&huge, &[], room, ContextRule::Summarize), Plan::TooLong { refused: false, .. }));
    }

    #[test]
    fn a_lead_joins_the_message_after_it() {
        let cut = ContextCut { dropped: 2, through: "2".into(), summary: "They met.".into(), window: 8000 };
        let history = vec![Turn::lead(&cut), turn("3", Role::User, 3)];
        let m = assemble(&history);
        assert_eq!(m.len(), 1);
        assert!(m[0].text().contains("They met.") && m[0].text().ends_with("xxx"), "{:?}", m[0]);
        let history = vec![Turn::lead(&cut), turn("3", Role::Assistant, 3)];
        assert_eq!(assemble(&history).iter().map(|m| m.role).collect::<Vec<_>>(), [Role::User, Role::Assistant]);
    }

    #[test]
    fn a_summary_reads_the_newest_part_when_it_cannot_read_all() {
        let history = vec![turn("1", Role::User, 100), turn("2", Role::Assistant, 100)];
        let all = summary_source(&history, 10_000);
        assert!(all.starts_with("User: ") && all.contains("Assistant: "));
        let tail = summary_source(&history, 50);
        assert_eq!(tail.len(), 50);
        assert!(all.ends_with(&tail));
        let cut = ContextCut { dropped: 2, through: "0".into(), summary: "They met.".into(), window: 8000 };
        let with_lead = [vec![Turn::lead(&cut)], history].concat();
        let source = summary_source(&with_lead, 200);
        assert!(source.contains("They met.") && source.ends_with("xxxx\n\n") && source.len() <= 200, "{source}");
    }
}

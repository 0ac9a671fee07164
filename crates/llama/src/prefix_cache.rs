//! The prefix cache: KV sequences kept for reuse, and the pool of free sequence slots.
//!
//! An entry is a sequence whose KV holds the tokens `0..len` of some earlier prompt or
//! finished sample. A new request copies the longest common prefix from the best entry and
//! decodes only the rest. Entries that a request still needs are pinned; unpinned ones are
//! evicted least recently used first, when a slot or KV cells are needed, and beyond
//! `capacity`.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;

/// A KV sequence kept for prefix reuse.
struct CacheEntry {
    seq: i32,
    /// Tokens whose KV this sequence holds, positions 0..len.
    tokens: Vec<LlamaToken>,
    /// Cells this entry added beyond what it copied (for the KV budget).
    own: usize,
    last_used: u64,
    /// Requests that still need it (prefilling into it or copying from it).
    pins: usize,
}

/// The best cached source for a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Match {
    /// The entry's sequence.
    pub seq: i32,
    /// Tokens it shares with the prompt.
    pub len: usize,
    /// Whether the entry holds exactly those tokens (nothing beyond them).
    pub whole: bool,
}

/// Cached sequences and free sequence slots.
pub(crate) struct PrefixCache {
    entries: Vec<CacheEntry>,
    free: Vec<i32>,
    clock: u64,
    capacity: usize,
    n_seq: u32,
}

/// Length of the common prefix of `a` and `b`.
pub(crate) fn lcp(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixCache {
    /// An empty cache over sequence slots `0..n_seq`, keeping at most `capacity` unpinned
    /// entries.
    pub fn new(n_seq: u32, capacity: usize) -> Self {
        Self {
            entries: Vec::new(),
            free: (0..n_seq as i32).rev().collect(),
            clock: 0,
            capacity,
            n_seq,
        }
    }

    /// The next LRU timestamp.
    pub fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Whether finished samples are kept as entries at all.
    pub fn keeps_finished(&self) -> bool {
        self.capacity > 0
    }

    /// KV cells the entries hold of their own.
    pub fn cells(&self) -> usize {
        self.entries.iter().map(|e| e.own).sum()
    }

    /// Tokens held by the entry of `seq` (0 when it has none).
    pub fn len_of(&self, seq: i32) -> usize {
        self.entry(seq).map_or(0, |e| e.tokens.len())
    }

    /// The entry sharing the longest prefix with `target` (the last of equals).
    pub fn longest_match(&self, target: &[LlamaToken]) -> Option<Match> {
        self.entries
            .iter()
            .map(|e| (e, lcp(&e.tokens, target)))
            .max_by_key(|&(_, l)| l)
            .map(|(e, len)| Match {
                seq: e.seq,
                len,
                whole: e.tokens.len() == len,
            })
    }

    fn entry(&self, seq: i32) -> Option<&CacheEntry> {
        self.entries.iter().find(|e| e.seq == seq)
    }

    fn entry_mut(&mut self, seq: i32) -> Option<&mut CacheEntry> {
        self.entries.iter_mut().find(|e| e.seq == seq)
    }

    /// Marks the entry of `seq` as needed (and used at `now`).
    pub fn pin(&mut self, seq: i32, now: u64) {
        if let Some(e) = self.entry_mut(seq) {
            e.pins += 1;
            e.last_used = now;
        }
    }

    /// Undoes one [`PrefixCache::pin`].
    pub fn unpin(&mut self, seq: i32) {
        if let Some(e) = self.entry_mut(seq) {
            e.pins = e.pins.saturating_sub(1);
        }
    }

    /// Adds sequence `seq`, holding `tokens`, as an entry.
    pub fn insert(&mut self, seq: i32, tokens: Vec<LlamaToken>, own: usize, now: u64, pins: usize) {
        self.entries.push(CacheEntry {
            seq,
            tokens,
            own,
            last_used: now,
            pins,
        });
    }

    /// Records that `tokens` were decoded at the end of the entry of `seq`.
    pub fn extend(&mut self, seq: i32, tokens: &[LlamaToken]) {
        if let Some(e) = self.entry_mut(seq) {
            e.tokens.extend_from_slice(tokens);
            e.own += tokens.len();
        }
    }

    /// A free sequence slot, evicting the least recently used entry if none is free.
    pub fn take_seq(&mut self, ctx: &mut LlamaContext<'_>) -> Option<i32> {
        if self.free.is_empty() {
            self.evict_lru(ctx);
        }
        self.free.pop()
    }

    /// Returns a slot whose KV is still empty.
    pub fn give_back(&mut self, seq: i32) {
        self.free.push(seq);
    }

    /// Clears the KV of `seq` and frees its slot.
    pub fn release(&mut self, ctx: &mut LlamaContext<'_>, seq: i32) {
        let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.free.push(seq);
    }

    /// Evicts the least recently used unpinned entry. Returns false if none.
    pub fn evict_lru(&mut self, ctx: &mut LlamaContext<'_>) -> bool {
        let victim = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.pins == 0)
            .min_by_key(|(_, e)| e.last_used)
            .map(|(i, _)| i);
        match victim {
            Some(i) => {
                let e = self.entries.swap_remove(i);
                self.release(ctx, e.seq);
                true
            }
            None => false,
        }
    }

    /// Drops every entry and empties the whole KV cache, so that the next request decodes
    /// onto cells laid out exactly as in a fresh context. Only call it when no request or
    /// sample is active.
    pub fn clear(&mut self, ctx: &mut LlamaContext<'_>) {
        ctx.clear_kv_cache();
        self.entries.clear();
        self.free = (0..self.n_seq as i32).rev().collect();
    }

    /// Evicts entries until at most `capacity` are unpinned.
    pub fn trim(&mut self, ctx: &mut LlamaContext<'_>) {
        while self.entries.iter().filter(|e| e.pins == 0).count() > self.capacity {
            if !self.evict_lru(ctx) {
                break;
            }
        }
    }

    /// A request that used the entry of `seq` as its prefix went away: drops its pin (when
    /// it still held one) and, when it had not finished decoding its prompt into it, the
    /// entry too if nothing else needs it and it holds nothing (a half-decoded prefix is
    /// still a valid, shorter entry).
    pub fn abandon(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        seq: i32,
        pinned: bool,
        unfinished: bool,
    ) {
        let Some(i) = self.entries.iter().position(|e| e.seq == seq) else {
            return;
        };
        if pinned {
            self.entries[i].pins = self.entries[i].pins.saturating_sub(1);
        }
        let e = &self.entries[i];
        if unfinished && e.pins == 0 && e.tokens.is_empty() {
            let e = self.entries.swap_remove(i);
            self.release(ctx, e.seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: &[i32]) -> Vec<LlamaToken> {
        v.iter().map(|&t| LlamaToken(t)).collect()
    }

    #[test]
    fn common_prefix_and_best_match() {
        assert_eq!(lcp(&toks(&[1, 2]), &toks(&[1, 3])), 1);
        let mut c = PrefixCache::new(4, 2);
        assert_eq!(c.longest_match(&toks(&[1])), None);
        let now = c.tick();
        c.insert(0, toks(&[1, 2, 3]), 3, now, 0);
        c.insert(1, toks(&[1, 2]), 2, now, 0);
        let m = c.longest_match(&toks(&[1, 2, 9])).unwrap();
        // Both share two tokens; the later entry wins, and it holds exactly them.
        assert_eq!(
            m,
            Match {
                seq: 1,
                len: 2,
                whole: true
            }
        );
        let m = c.longest_match(&toks(&[1, 2, 3, 4])).unwrap();
        assert_eq!(
            m,
            Match {
                seq: 0,
                len: 3,
                whole: true
            }
        );
        assert_eq!(c.cells(), 5);
        c.extend(1, &toks(&[7]));
        assert_eq!(c.len_of(1), 3);
        assert_eq!(c.len_of(3), 0);
        assert_eq!(c.cells(), 6);
    }
}

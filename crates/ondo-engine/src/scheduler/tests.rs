//! The scheduler on its own: token budget, chunked prefill, arrival order, preemption and
//! freeing, with a fake executor that "samples" token 7 whenever a sequence reaches its end.

use super::*;

fn sched(blocks: usize, budget: usize, max_seqs: usize) -> Scheduler {
    Scheduler::new(SchedulerConfig {
        max_num_seqs: max_seqs,
        max_num_batched_tokens: budget,
        prefill_per_decode: 1.5,
        min_prefill_chunk: 16,
        num_blocks: blocks,
        block_size: 4,
        enable_prefix_caching: true,
    })
}

/// Schedule and commit one step; sequences reaching their end get a token, and are removed once
/// they have `len` tokens. Returns the plan's (seq, start, len) triples.
fn step(s: &mut Scheduler, plan: &mut Plan, done_at: &[usize]) -> Vec<(SeqId, usize, usize)> {
    s.schedule(plan);
    for &id in &plan.out_of_blocks {
        s.remove(id);
    }
    s.commit(plan);
    for item in &plan.items {
        if item.start + item.len == s.seq(item.seq).tokens.len() {
            if s.seq(item.seq).tokens.len() >= done_at[item.seq] {
                s.remove(item.seq);
            } else {
                s.append(item.seq, 7);
            }
        }
    }
    plan.items.iter().map(|i| (i.seq, i.start, i.len)).collect()
}

#[test]
fn budget_is_shared_running_first_then_arrival_order() {
    let mut s = sched(100, 8, 16);
    let mut plan = Plan::default();
    let a = s.add(vec![1; 10], true);
    let b = s.add(vec![2; 3], true);
    let c = s.add(vec![3; 3], true);
    let done = [20, 20, 20];
    assert_eq!(
        step(&mut s, &mut plan, &done),
        vec![(a, 0, 8)],
        "a takes the whole budget"
    );
    assert_eq!(step(&mut s, &mut plan, &done), vec![(a, 8, 2), (b, 0, 3), (c, 0, 3)]);
    // all decode now: one token each
    assert_eq!(step(&mut s, &mut plan, &done), vec![(a, 10, 1), (b, 3, 1), (c, 3, 1)]);
    assert_eq!(s.num_running(), 3);
}

#[test]
fn long_prompts_are_chunked_and_never_stall_decoding() {
    let mut s = sched(100, 6, 16);
    let mut plan = Plan::default();
    let a = s.add(vec![1; 2], true);
    let done = [40, 40];
    step(&mut s, &mut plan, &done); // a's prompt
    let b = s.add(vec![2; 20], true);
    for _ in 0..4 {
        let items = step(&mut s, &mut plan, &done);
        assert_eq!(items[0].0, a, "the running stream goes first");
        assert_eq!(items[0].2, 1, "one decode token");
        assert_eq!(
            items.iter().map(|i| i.2).sum::<usize>(),
            6,
            "budget filled with b's prompt"
        );
        assert_eq!(items[1].0, b);
    }
    let seq_b = s.seq(b);
    assert_eq!(seq_b.computed, 20, "b's 20 prompt tokens in 4 chunks of 5");
}

#[test]
fn max_num_seqs_caps_admission() {
    let mut s = sched(100, 64, 2);
    let mut plan = Plan::default();
    for _ in 0..3 {
        s.add(vec![1; 4], true);
    }
    let items = step(&mut s, &mut plan, &[9, 9, 9]);
    assert_eq!(items.len(), 2);
    assert_eq!(s.num_waiting(), 1);
}

#[test]
fn a_four_block_pool_preempts_the_newest_and_everyone_finishes() {
    // 4 blocks of 4 positions; two sequences that each grow to 10 tokens (3 blocks) cannot both
    // fit, so the newer one is preempted and recomputed later.
    let mut s = sched(4, 64, 16);
    let mut plan = Plan::default();
    let a = s.add(vec![1; 3], true);
    let b = s.add(vec![2; 3], true);
    let done = [10, 10];
    let mut finished = [false, false];
    let mut saw_preemption = false;
    for _ in 0..100 {
        step(&mut s, &mut plan, &done);
        saw_preemption |= s.counters.preemptions > 0;
        for id in [a, b] {
            finished[id] = s.seqs[id].is_none();
        }
        assert!(s.blocks.num_free() <= 4);
        if finished == [true, true] {
            break;
        }
    }
    assert_eq!(finished, [true, true], "both sequences finish");
    assert!(saw_preemption, "the pool was too small for both at once");
    assert_eq!(s.blocks.num_free(), 4, "every block is back");
}

#[test]
fn a_sequence_too_long_for_the_whole_pool_is_reported_not_looped() {
    let mut s = sched(2, 64, 16);
    let mut plan = Plan::default();
    let a = s.add(vec![1; 3], true);
    let mut out = false;
    for _ in 0..20 {
        s.schedule(&mut plan);
        if plan.out_of_blocks.contains(&a) {
            out = true;
            break;
        }
        s.commit(&plan);
        s.append(a, 7);
    }
    assert!(out, "a grows past 8 positions and is reported out of blocks");
}

#[test]
fn removing_a_sequence_frees_its_blocks_at_once() {
    let mut s = sched(10, 64, 16);
    let mut plan = Plan::default();
    let a = s.add(vec![1; 9], true); // 3 blocks
    step(&mut s, &mut plan, &[99]);
    assert_eq!(s.blocks.num_free(), 7);
    s.remove(a);
    assert_eq!(s.blocks.num_free(), 10);
    assert_eq!(s.num_running(), 0);
}

#[test]
fn prefix_blocks_are_found_by_a_later_sequence() {
    let mut s = sched(20, 64, 16);
    let mut plan = Plan::default();
    let prompt: Vec<u32> = (0..13).collect();
    let a = s.add(prompt.clone(), true);
    step(&mut s, &mut plan, &[99, 99]);
    s.remove(a); // its blocks are free but keep their prefix
    let mut other = prompt.clone();
    other[12] = 99; // same first 12 tokens = 3 full blocks
    let b = s.add(other, true);
    let items = step(&mut s, &mut plan, &[99, 99]);
    assert_eq!(
        items,
        vec![(b, 12, 1)],
        "12 tokens come from the cache, only the last is computed"
    );
    assert_eq!(s.counters.prefix_hits, 12);
}

#[test]
fn the_last_prompt_token_is_recomputed_even_on_a_full_hit() {
    let mut s = sched(20, 64, 16);
    let mut plan = Plan::default();
    let prompt: Vec<u32> = (0..8).collect(); // exactly 2 blocks
    let a = s.add(prompt.clone(), true);
    step(&mut s, &mut plan, &[99, 99]);
    s.remove(a);
    let b = s.add(prompt, true);
    let items = step(&mut s, &mut plan, &[99, 99]);
    assert_eq!(
        items,
        vec![(b, 4, 4)],
        "the block with the last token is not taken from the cache"
    );
}

#[test]
fn forks_share_blocks_and_copy_the_partial_one_on_write() {
    let mut s = sched(20, 64, 16);
    let mut plan = Plan::default();
    let a = s.add((0..6).collect(), true); // blocks: 1 full + 1 partial (2 of 4)
    s.schedule(&mut plan);
    s.commit(&plan);
    let kids: Vec<SeqId> = (0..3).map(|_| s.fork(a)).collect();
    assert_eq!(s.blocks.num_free(), 18, "four sequences, still two blocks");
    for &id in [a].iter().chain(&kids) {
        s.append(id, 7);
    }
    s.schedule(&mut plan);
    assert_eq!(plan.items.len(), 4);
    assert_eq!(
        plan.copies.len(),
        3,
        "three copies of the shared partial block; the last writer keeps it"
    );
    assert!(plan.copies.iter().all(|c| c.slots == 2));
    assert_eq!(s.blocks.num_free(), 15);
    let full = s.seq(a).table[0];
    assert!(
        [a].iter().chain(&kids).all(|&id| s.seq(id).table[0] == full),
        "the full block stays shared"
    );
    assert_eq!(s.blocks.refs(full), 4);
}

#[test]
fn prompt_chunks_beside_decoding_sequences_are_capped_per_decoder() {
    let mut s = sched(400, 512, 64);
    let mut plan = Plan::default();
    let done = [999; 40];
    let decoders: Vec<SeqId> = (0..20).map(|_| s.add(vec![1; 2], true)).collect();
    step(&mut s, &mut plan, &done); // their prompts
    let long = s.add(vec![2; 500], true);
    let items = step(&mut s, &mut plan, &done);
    assert!(items.iter().filter(|i| decoders.contains(&i.0)).all(|i| i.2 == 1));
    let chunk = items.iter().find(|i| i.0 == long).expect("the prompt is admitted").2;
    assert_eq!(chunk, 30, "1.5 prompt tokens per decoding sequence (20 decode)");
    // alone, a prompt takes the whole budget
    let mut s = sched(400, 512, 64);
    let alone = s.add(vec![2; 500], true);
    assert_eq!(step(&mut s, &mut plan, &done), vec![(alone, 0, 500)]);
    // one decoding sequence: the floor of 16 prompt tokens
    let mut s = sched(400, 512, 64);
    let d = s.add(vec![1; 2], true);
    step(&mut s, &mut plan, &done);
    let p = s.add(vec![2; 500], true);
    assert_eq!(step(&mut s, &mut plan, &done), vec![(d, 2, 1), (p, 0, 16)]);
}

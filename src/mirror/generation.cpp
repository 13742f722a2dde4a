#include "mirror/generation.h"

#include <openssl/rand.h>

#include <cstdio>

namespace cloudkeep::mirror {

namespace {

bool InHistory(const Generations& g, uint64_t id) {
  if (id == 0) return false;
  for (uint64_t h : g.history)
    if (h == id) return true;
  return false;
}

bool ShareAncestor(const Generations& a, const Generations& b) {
  auto ids = [](const Generations& g) {
    std::array<uint64_t, kHistorySize + 1> out{};
    out[0] = g.bitmap;
    for (size_t i = 0; i < kHistorySize; i++) out[i + 1] = g.history[i];
    return out;
  };
  for (uint64_t x : ids(a))
    for (uint64_t y : ids(b))
      if (x != 0 && x == y) return true;
  return false;
}

// The decision from the point of view of `local`, before split-brain resolution.
Decision Compare(const GenInfo& l, const GenInfo& p) {
  const Generations &a = l.gen, &b = p.gen;
  if (a.current == 0 && b.current == 0)
    return {SyncDecision::kBothInconsistent, "neither copy was ever up to date"};
  if (a.current == 0)
    return {SyncDecision::kTargetFull, "this copy is new: full sync from " + p.node};
  if (b.current == 0) return {SyncDecision::kSourceFull, p.node + "'s copy is new: full sync"};
  if (a.current == b.current) {
    if (l.inconsistent != p.inconsistent)
      return l.inconsistent
                 ? Decision{SyncDecision::kTargetBitmap, "resuming an interrupted resync"}
                 : Decision{SyncDecision::kSourceBitmap, "resuming an interrupted resync"};
    // A node promoted since (fencing starts its generation only at its first
    // write without the peer, so it may not have one yet) serves the client:
    // its copy is the source, and the crashed one's unacknowledged writes are
    // rolled back.
    if (l.crashed_primary != p.crashed_primary && l.primary != p.primary &&
        (l.primary ? p.crashed_primary : l.crashed_primary))
      return l.primary ? Decision{SyncDecision::kSourceBitmap,
                                  p.node + " crashed as primary; this node is primary now"}
                       : Decision{SyncDecision::kTargetBitmap,
                                  "this node crashed as primary; " + p.node + " is primary now"};
    if (l.crashed_primary != p.crashed_primary)
      return l.crashed_primary ? Decision{SyncDecision::kSourceBitmap,
                                          "this node crashed as primary: its activity log travels"}
                               : Decision{SyncDecision::kTargetBitmap,
                                          p.node + " crashed as primary: its activity log travels"};
    if (l.dirty_bits || p.dirty_bits || l.crashed_primary) {
      // Same generation, regions marked (online verify, both crashed): the primary, else the lower
      // name, sends.
      bool src = l.primary != p.primary ? l.primary : l.node < p.node;
      return src ? Decision{SyncDecision::kSourceBitmap, "same generation, marked regions"}
                 : Decision{SyncDecision::kTargetBitmap, "same generation, marked regions"};
    }
    return {SyncDecision::kNone, "same generation"};
  }
  if (a.bitmap != 0 && a.bitmap == b.current)
    return {SyncDecision::kSourceBitmap, "this node wrote while " + p.node + " was away"};
  if (b.bitmap != 0 && b.bitmap == a.current)
    return {SyncDecision::kTargetBitmap, p.node + " wrote while this node was away"};
  if (a.bitmap != 0 && a.bitmap == b.bitmap)
    return {SyncDecision::kSplitBrain,
            "both nodes wrote since generation " + FormatGeneration(a.bitmap)};
  if (InHistory(a, b.current))
    return {SyncDecision::kSourceFull, p.node + "'s copy is older than the bitmap"};
  if (InHistory(b, a.current))
    return {SyncDecision::kTargetFull, "this copy is older than the bitmap"};
  if (ShareAncestor(a, b))
    return {SyncDecision::kSplitBrain, "both nodes wrote since a shared generation"};
  return {SyncDecision::kUnrelated, "the copies share no generation"};
}

}  // namespace

Decision Decide(const GenInfo& local, const GenInfo& peer) {
  Decision d = Compare(local, peer);
  if (d.what == SyncDecision::kSplitBrain || d.what == SyncDecision::kUnrelated) {
    bool bitmap_ok = d.what == SyncDecision::kSplitBrain && local.gen.bitmap != 0 &&
                     local.gen.bitmap == peer.gen.bitmap;
    if (local.discard && !peer.discard)
      return {bitmap_ok ? SyncDecision::kTargetBitmap : SyncDecision::kTargetFull,
              "split brain resolved: this node's changes are discarded (" + d.reason + ")"};
    if (peer.discard && !local.discard)
      return {bitmap_ok ? SyncDecision::kSourceBitmap : SyncDecision::kSourceFull,
              "split brain resolved: " + peer.node + "'s changes are discarded (" + d.reason + ")"};
  }
  return d;
}

bool IsSource(SyncDecision d) {
  return d == SyncDecision::kSourceBitmap || d == SyncDecision::kSourceFull;
}
bool IsTarget(SyncDecision d) {
  return d == SyncDecision::kTargetBitmap || d == SyncDecision::kTargetFull;
}
bool IsFull(SyncDecision d) {
  return d == SyncDecision::kSourceFull || d == SyncDecision::kTargetFull;
}

const char* DecisionName(SyncDecision d) {
  switch (d) {
    case SyncDecision::kNone:
      return "none";
    case SyncDecision::kSourceBitmap:
      return "source-bitmap";
    case SyncDecision::kSourceFull:
      return "source-full";
    case SyncDecision::kTargetBitmap:
      return "target-bitmap";
    case SyncDecision::kTargetFull:
      return "target-full";
    case SyncDecision::kBothInconsistent:
      return "both-inconsistent";
    case SyncDecision::kSplitBrain:
      return "split-brain";
    case SyncDecision::kUnrelated:
      return "unrelated";
  }
  return "?";
}

uint64_t NewGenerationId() {
  uint64_t v = 0;
  while (v == 0) RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v);
  return v;
}

std::string FormatGeneration(uint64_t id) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(id));
  return buf;
}

void RotateForDivergence(Generations* g) {
  // Already diverging since B: the bitmap already tracks from there, C stays.
  if (g->bitmap != 0) return;
  g->bitmap = g->current;
  g->current = NewGenerationId();
}

void RetireBitmapId(Generations* g) {
  if (g->bitmap == 0) return;
  for (size_t i = kHistorySize - 1; i > 0; i--) g->history[i] = g->history[i - 1];
  g->history[0] = g->bitmap;
  g->bitmap = 0;
}

}  // namespace cloudkeep::mirror

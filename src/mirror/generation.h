// Generation identifiers (DRBD 9 user's guide, "Generation identifiers"):
// which copy of the data is newer, and so the direction of a resync.
//
// Each node keeps a current id (C), a bitmap id (B) and a short history (H).
// A copy that has never been up to date has C = 0. A node that starts to
// write without its peer (a primary whose standby went away, a standby
// promoted while alone) moves C to B and takes a fresh random C: B names
// the last state both copies shared, and the dirty bitmap holds every
// region written since. When a resync completes the target takes the
// source's C, and the source retires B into its history.
//
// Decide() compares the two nodes at connect time. It is antisymmetric:
// Decide(a, b) on one node and Decide(b, a) on the other always agree on
// who is the source. It never resolves a split brain by itself: only a
// discard request (`mirror resolve --discard NODE`) names the loser.
//
// Thread safety: pure functions over values.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cloudkeep::mirror {

constexpr size_t kHistorySize = 4;

struct Generations {
  uint64_t current = 0;
  uint64_t bitmap = 0;
  std::array<uint64_t, kHistorySize> history{};
};

// What one side tells the other about its data in the handshake.
struct GenInfo {
  std::string node;
  Generations gen;
  bool inconsistent = false;     // a resync into this copy has not finished
  bool crashed_primary = false;  // was primary when it stopped without a clean demote
  bool primary = false;          // role now
  bool discard = false;          // an operator chose to discard this copy (split brain)
  uint64_t dirty_bits = 0;       // bits set in its bitmap for the peer
};

enum class SyncDecision {
  kNone,              // same data: connect, nothing to resync
  kSourceBitmap,      // local is the source; resync the union of both bitmaps
  kSourceFull,        // local is the source; resync everything
  kTargetBitmap,      // peer is the source; union of both bitmaps
  kTargetFull,        // peer is the source; everything
  kBothInconsistent,  // neither copy was ever up to date: nothing to sync from
  kSplitBrain,        // both wrote since they last shared a state
  kUnrelated,         // no common history: refuse
};

struct Decision {
  SyncDecision what = SyncDecision::kNone;
  std::string reason;  // one line for the log
};

Decision Decide(const GenInfo& local, const GenInfo& peer);

bool IsSource(SyncDecision d);
bool IsTarget(SyncDecision d);
bool IsFull(SyncDecision d);
const char* DecisionName(SyncDecision d);

// A fresh random non-zero generation id.
uint64_t NewGenerationId();
// "8F3A2C19D04B7E61"
std::string FormatGeneration(uint64_t id);

// The node starts writing without its peer: if B is 0, B = C and C = new
// (if B is set the bitmap already tracks everything since B).
void RotateForDivergence(Generations* g);
// Resync done: on the source, B joins the history and B = 0.
void RetireBitmapId(Generations* g);

}  // namespace cloudkeep::mirror

#include "mirror/generation.h"

#include <gtest/gtest.h>

namespace cloudkeep::mirror {
namespace {

GenInfo Node(const std::string& name, uint64_t c, uint64_t b = 0, std::array<uint64_t, 4> h = {}) {
  GenInfo g;
  g.node = name;
  g.gen.current = c;
  g.gen.bitmap = b;
  g.gen.history = h;
  return g;
}

// Decide on one node must mirror Decide on the other.
SyncDecision Mirror(SyncDecision d) {
  switch (d) {
    case SyncDecision::kSourceBitmap:
      return SyncDecision::kTargetBitmap;
    case SyncDecision::kSourceFull:
      return SyncDecision::kTargetFull;
    case SyncDecision::kTargetBitmap:
      return SyncDecision::kSourceBitmap;
    case SyncDecision::kTargetFull:
      return SyncDecision::kSourceFull;
    default:
      return d;
  }
}

SyncDecision Both(const GenInfo& a, const GenInfo& b) {
  SyncDecision d = Decide(a, b).what;
  EXPECT_EQ(Decide(b, a).what, Mirror(d)) << DecisionName(d);
  return d;
}

TEST(MirrorGenerations, FreshNodes) {
  EXPECT_EQ(Both(Node("a", 0), Node("b", 0)), SyncDecision::kBothInconsistent);
  EXPECT_EQ(Both(Node("a", 7), Node("b", 0)), SyncDecision::kSourceFull);
  EXPECT_EQ(Both(Node("a", 7), Node("b", 7)), SyncDecision::kNone);
}

TEST(MirrorGenerations, PrimaryWroteWhileStandbyAway) {
  Generations a{7, 0, {}};
  RotateForDivergence(&a);
  EXPECT_EQ(a.bitmap, 7u);
  EXPECT_NE(a.current, 7u);
  uint64_t c = a.current;
  RotateForDivergence(&a);  // still diverging since 7: nothing changes
  EXPECT_EQ(a.current, c);
  GenInfo pa = Node("a", a.current, a.bitmap), pb = Node("b", 7);
  EXPECT_EQ(Both(pa, pb), SyncDecision::kSourceBitmap);
  RetireBitmapId(&a);
  EXPECT_EQ(a.bitmap, 0u);
  EXPECT_EQ(a.history[0], 7u);
  // A standby older than the bitmap id (it missed a whole resync): full sync.
  EXPECT_EQ(Both(Node("a", a.current, 0, a.history), Node("b", 7)), SyncDecision::kSourceFull);
}

TEST(MirrorGenerations, FailoverThenOldPrimaryRejoins) {
  // b was promoted after a crashed: b rotated from the shared 7.
  GenInfo a = Node("a", 7);
  a.crashed_primary = true;
  GenInfo b = Node("b", 99, 7);
  b.primary = true;
  EXPECT_EQ(Both(a, b), SyncDecision::kTargetBitmap);
}

TEST(MirrorGenerations, CrashedPrimarySameGeneration) {
  GenInfo a = Node("a", 7), b = Node("b", 7);
  a.crashed_primary = true;
  EXPECT_EQ(Both(a, b), SyncDecision::kSourceBitmap);
}

TEST(MirrorGenerations, CrashedPrimaryMeetsPrimaryNotYetWriting) {
  // Fencing: b was elected while a (crashed as primary) was away and has
  // not written yet, so it has no generation of its own: b serves, b sends.
  GenInfo a = Node("a", 7), b = Node("b", 7);
  a.crashed_primary = true;
  b.primary = true;
  EXPECT_EQ(Both(a, b), SyncDecision::kTargetBitmap);
  // The crashed node primary again (re-elected): it sends, as before.
  GenInfo c = Node("c", 7), d = Node("d", 7);
  c.crashed_primary = true;
  c.primary = true;
  EXPECT_EQ(Both(c, d), SyncDecision::kSourceBitmap);
}

TEST(MirrorGenerations, InterruptedResyncResumes) {
  GenInfo a = Node("a", 8, 7), b = Node("b", 7);
  b.inconsistent = true;
  EXPECT_EQ(Both(a, b), SyncDecision::kSourceBitmap);
  GenInfo c = Node("c", 8), d = Node("d", 8);
  d.inconsistent = true;
  EXPECT_EQ(Both(c, d), SyncDecision::kSourceBitmap);
}

TEST(MirrorGenerations, SplitBrainIsNeverResolvedSilently) {
  GenInfo a = Node("a", 11, 7), b = Node("b", 12, 7);
  a.primary = b.primary = true;
  a.dirty_bits = 100;
  EXPECT_EQ(Both(a, b), SyncDecision::kSplitBrain);
  b.discard = true;
  EXPECT_EQ(Both(a, b), SyncDecision::kSourceBitmap);
  b.discard = false;
  a.discard = true;
  EXPECT_EQ(Both(a, b), SyncDecision::kTargetBitmap);
  // Split brain found through the history only: a full sync on resolve.
  GenInfo c = Node("c", 11, 0, {7}), d = Node("d", 12, 0, {7});
  EXPECT_EQ(Both(c, d), SyncDecision::kSplitBrain);
  d.discard = true;
  EXPECT_EQ(Both(c, d), SyncDecision::kSourceFull);
}

TEST(MirrorGenerations, UnrelatedData) {
  EXPECT_EQ(Both(Node("a", 5), Node("b", 6)), SyncDecision::kUnrelated);
}

TEST(MirrorGenerations, Format) {
  EXPECT_EQ(FormatGeneration(0x8F3A2C19D04B7E61ull), "8F3A2C19D04B7E61");
  EXPECT_NE(NewGenerationId(), 0u);
}

}  // namespace
}  // namespace cloudkeep::mirror

// The NBD server core against a raw client on a socketpair: the parsers of
// untrusted option data, the handshake (fixed newstyle, INFO/GO, LIST,
// STRUCTURED_REPLY, META_CONTEXT, unknown options keep the connection), and
// the transmission phase (bounds, flags, read-only, pipelining, replies to
// hostile requests). Real clients drive it in test_nbd_protocol.sh.
#include "nbd/protocol.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "core/net.h"
#include "nbd/file_backend.h"
#include "nbd/server.h"

namespace cloudkeep::nbd {
namespace {

using namespace proto;

TEST(NbdProtocolTest, InfoRequestLengthsAreChecked) {
  std::string d;
  Put32(&d, 3);
  d += "abc";
  Put16(&d, 2);
  Put16(&d, kInfoName);
  Put16(&d, kInfoBlockSize);
  auto r = ParseInfoRequest(d);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name, "abc");
  EXPECT_EQ(r->infos, (std::vector<uint16_t>{kInfoName, kInfoBlockSize}));
  EXPECT_FALSE(ParseInfoRequest(d + "x"));                    // trailing byte
  EXPECT_FALSE(ParseInfoRequest(d.substr(0, d.size() - 1)));  // short
  std::string huge;
  Put32(&huge, 0xffffffff);  // a name longer than the data
  EXPECT_FALSE(ParseInfoRequest(huge));
}

TEST(NbdProtocolTest, MetaContextCountIsBoundedByTheData) {
  std::string d;
  Put32(&d, 0);
  Put32(&d, 0x40000000);  // a billion queries announced in 8 bytes
  EXPECT_FALSE(ParseMetaContextRequest(d));
  std::string ok;
  Put32(&ok, 0);
  Put32(&ok, 1);
  Put32(&ok, 15);
  ok += "base:allocation";
  auto r = ParseMetaContextRequest(ok);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->queries, std::vector<std::string>{"base:allocation"});
}

TEST(NbdProtocolTest, ErrnoMapping) {
  EXPECT_EQ(ErrnoToNbd(ENOSPC), kEnospc);
  EXPECT_EQ(ErrnoToNbd(EROFS), kEperm);
  EXPECT_EQ(ErrnoToNbd(ENOTSUP), kEnotsup);
  EXPECT_EQ(ErrnoToNbd(0), kEio);
  EXPECT_EQ(ErrnoToNbd(EBADMSG), kEio);
}

// A raw client on one end of a socketpair; the server on the other.
class NbdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("nbd-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, kSize), 0);
    std::string data(4096, 'A');
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), kSize - 65536), 4096);  // data near the end
    close(fd);
  }
  void TearDown() override {
    if (client_ >= 0) close(client_);
    if (thread_.joinable()) thread_.join();
    std::filesystem::remove(path_);
  }
  void StartServer(bool writable = true) {
    auto b = FileBackend::Open(path_, writable);
    ASSERT_TRUE(b.ok()) << b.status().message();
    exports_.push_back(
        Export{"disk", "a test disk", std::shared_ptr<Backend>(std::move(b).value())});
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    client_ = sv[0];
    int server_fd = sv[1];
    options_.handshake_timeout = std::chrono::milliseconds(500);
    thread_ = std::thread([this, server_fd] {
      ServeConnection(server_fd, exports_, options_, stop_, &counters_);
      close(server_fd);
    });
  }

  std::string Read(size_t n) {
    std::string s(n, '\0');
    Status st = ReadFull(client_, s.data(), n);
    EXPECT_TRUE(st.ok()) << st.message();
    return st.ok() ? s : std::string();
  }
  bool Closed() {
    char c;
    return read(client_, &c, 1) == 0;
  }
  void Write(const std::string& s) { ASSERT_TRUE(WriteFull(client_, s.data(), s.size()).ok()); }

  void Greet(uint32_t flags = kClientFixedNewstyle | kClientNoZeroes) {
    std::string h = Read(18);
    ASSERT_EQ(Get64(reinterpret_cast<const uint8_t*>(h.data())), kNbdMagic);
    ASSERT_EQ(Get64(reinterpret_cast<const uint8_t*>(h.data() + 8)), kIHaveOpt);
    std::string f;
    Put32(&f, flags);
    Write(f);
  }
  void Option(uint32_t opt, const std::string& data) {
    std::string o;
    Put64(&o, kIHaveOpt);
    Put32(&o, opt);
    Put32(&o, static_cast<uint32_t>(data.size()));
    Write(o + data);
  }
  struct OptReply {
    uint32_t option, type;
    std::string data;
  };
  OptReply ReadOptReply() {
    std::string h = Read(20);
    auto* p = reinterpret_cast<const uint8_t*>(h.data());
    EXPECT_EQ(Get64(p), kOptReplyMagic);
    OptReply r{Get32(p + 8), Get32(p + 12), ""};
    r.data = Read(Get32(p + 16));
    return r;
  }
  std::string InfoData(const std::string& name, std::vector<uint16_t> infos = {}) {
    std::string d;
    Put32(&d, static_cast<uint32_t>(name.size()));
    d += name;
    Put16(&d, static_cast<uint16_t>(infos.size()));
    for (auto i : infos) Put16(&d, i);
    return d;
  }
  // GO; returns the transmission flags.
  uint16_t Go(const std::string& name = "disk") {
    Option(kOptGo, InfoData(name));
    uint16_t flags = 0;
    for (;;) {
      OptReply r = ReadOptReply();
      if (r.type == kRepAck) break;
      EXPECT_EQ(r.type, kRepInfo);
      if (r.data.size() >= 12 &&
          Get16(reinterpret_cast<const uint8_t*>(r.data.data())) == kInfoExport) {
        EXPECT_EQ(Get64(reinterpret_cast<const uint8_t*>(r.data.data() + 2)), kSize);
        flags = Get16(reinterpret_cast<const uint8_t*>(r.data.data() + 10));
      }
    }
    return flags;
  }
  void Structured() {
    Option(kOptStructuredReply, "");
    EXPECT_EQ(ReadOptReply().type, kRepAck);
  }
  void SetBaseAllocation() {
    std::string d;
    Put32(&d, 4);
    d += "disk";
    Put32(&d, 1);
    Put32(&d, 15);
    d += "base:allocation";
    Option(kOptSetMetaContext, d);
    OptReply r = ReadOptReply();
    EXPECT_EQ(r.type, kRepMetaContext);
    EXPECT_EQ(r.data.substr(4), "base:allocation");
    EXPECT_EQ(ReadOptReply().type, kRepAck);
  }
  void Request(uint16_t type, uint64_t cookie, uint64_t offset, uint32_t length, uint16_t flags = 0,
               const std::string& payload = "") {
    proto::Request r{flags, type, cookie, offset, length};
    Write(EncodeRequest(r) + payload);
  }
  // Reads one simple reply (no payload); returns the error.
  uint32_t SimpleError(uint64_t cookie) {
    std::string h = Read(16);
    auto* p = reinterpret_cast<const uint8_t*>(h.data());
    EXPECT_EQ(Get32(p), kSimpleReplyMagic);
    EXPECT_EQ(Get64(p + 8), cookie);
    return Get32(p + 4);
  }
  struct Chunk {
    uint16_t flags, type;
    uint64_t cookie;
    std::string payload;
  };
  Chunk ReadChunk() {
    std::string h = Read(20);
    auto* p = reinterpret_cast<const uint8_t*>(h.data());
    EXPECT_EQ(Get32(p), kStructuredReplyMagic);
    Chunk c{Get16(p + 4), Get16(p + 6), Get64(p + 8), ""};
    c.payload = Read(Get32(p + 16));
    return c;
  }

  static constexpr uint64_t kSize = 1 << 20;
  std::filesystem::path path_;
  std::vector<Export> exports_;
  ServerOptions options_;
  std::atomic<bool> stop_{false};
  ServerCounters counters_;
  std::thread thread_;
  int client_ = -1;
};

TEST_F(NbdServerTest, UnknownOptionIsUnsupportedAndTheConnectionIsKept) {
  StartServer();
  Greet();
  Option(0x1234, "whatever");
  OptReply r = ReadOptReply();
  EXPECT_EQ(r.option, 0x1234u);
  EXPECT_EQ(r.type, kRepErrUnsup);
  Option(kOptStartTls, "");
  EXPECT_EQ(ReadOptReply().type, kRepErrUnsup);
  uint16_t flags = Go();
  EXPECT_TRUE(flags & kSendFlush);
  EXPECT_TRUE(flags & kSendFua);
  EXPECT_TRUE(flags & kCanMultiConn);
  EXPECT_FALSE(flags & kReadOnly);
  EXPECT_FALSE(flags & kSendDf);  // no structured replies negotiated
}

TEST_F(NbdServerTest, InfoReportsNameDescriptionAndBlockSizes) {
  StartServer();
  Greet();
  Option(kOptInfo, InfoData("disk", {kInfoName, kInfoDescription, kInfoBlockSize}));
  std::map<uint16_t, std::string> infos;
  for (;;) {
    OptReply r = ReadOptReply();
    if (r.type == kRepAck) break;
    ASSERT_EQ(r.type, kRepInfo);
    infos[Get16(reinterpret_cast<const uint8_t*>(r.data.data()))] = r.data.substr(2);
  }
  EXPECT_EQ(infos[kInfoName], "disk");
  EXPECT_EQ(infos[kInfoDescription], "a test disk");
  ASSERT_EQ(infos[kInfoBlockSize].size(), 12u);
  EXPECT_EQ(Get32(reinterpret_cast<const uint8_t*>(infos[kInfoBlockSize].data() + 8)), 32u << 20);
  ASSERT_TRUE(infos.count(kInfoExport));
  // INFO leaves the client in negotiation: an unknown export next.
  Option(kOptGo, InfoData("nope"));
  EXPECT_EQ(ReadOptReply().type, kRepErrUnknown);
  Option(kOptList, "");
  OptReply s = ReadOptReply();
  EXPECT_EQ(s.type, kRepServer);
  EXPECT_EQ(s.data.substr(4, 4), "disk");
  EXPECT_EQ(ReadOptReply().type, kRepAck);
  Option(kOptAbort, "");
  EXPECT_EQ(ReadOptReply().type, kRepAck);
  EXPECT_TRUE(Closed());
}

TEST_F(NbdServerTest, MetaContextNeedsStructuredReplies) {
  StartServer();
  Greet();
  std::string d;
  Put32(&d, 4);
  d += "disk";
  Put32(&d, 0);
  Option(kOptSetMetaContext, d);
  EXPECT_EQ(ReadOptReply().type, kRepErrInvalid);
  Option(kOptListMetaContext, d);  // LIST with no queries lists everything
  OptReply r = ReadOptReply();
  EXPECT_EQ(r.type, kRepMetaContext);
  EXPECT_EQ(r.data.substr(4), "base:allocation");
  EXPECT_EQ(ReadOptReply().type, kRepAck);
}

TEST_F(NbdServerTest, BlockStatusReportsHolesAndData) {
  StartServer();
  Greet();
  Structured();
  SetBaseAllocation();
  EXPECT_TRUE(Go() & kSendDf);
  Request(kCmdBlockStatus, 7, 0, kSize);
  Chunk c = ReadChunk();
  EXPECT_EQ(c.type, kReplyTypeBlockStatus);
  EXPECT_EQ(c.cookie, 7u);
  EXPECT_TRUE(c.flags & kReplyFlagDone);
  auto* p = reinterpret_cast<const uint8_t*>(c.payload.data());
  ASSERT_GE(c.payload.size(), 4u + 16u);
  EXPECT_EQ(Get32(p), kBaseAllocationId);
  // A hole up to the data written 64 KiB before the end.
  EXPECT_EQ(Get32(p + 4), kSize - 65536);
  EXPECT_EQ(Get32(p + 8), Extent::kHole | Extent::kZero);
  EXPECT_EQ(Get32(p + 16), 0u);
  uint64_t total = 0;
  for (size_t i = 4; i + 8 <= c.payload.size(); i += 8) total += Get32(p + i);
  EXPECT_EQ(total, kSize);
  Request(kCmdBlockStatus, 8, 0, kSize, kCmdFlagReqOne);
  Chunk one = ReadChunk();
  EXPECT_EQ(one.payload.size(), 12u);
}

TEST_F(NbdServerTest, BadRequestsGetErrorsAndTheConnectionGoesOn) {
  StartServer();
  Greet();
  Structured();
  Go();
  Request(kCmdRead, 1, kSize - 512, 1024);  // past the end
  Chunk c = ReadChunk();
  EXPECT_EQ(c.type, kReplyTypeError);
  EXPECT_EQ(Get32(reinterpret_cast<const uint8_t*>(c.payload.data())), kEinval);
  Request(kCmdRead, 2, UINT64_MAX - 10, 512);  // offset + length overflows
  EXPECT_EQ(ReadChunk().type, kReplyTypeError);
  Request(99, 3, 0, 0);  // unknown command
  EXPECT_EQ(ReadChunk().type, kReplyTypeError);
  Request(kCmdFlush, 4, 0, 0, 0x8000);  // unknown flag
  EXPECT_EQ(ReadChunk().type, kReplyTypeError);
  Request(kCmdBlockStatus, 5, 0, 512);  // no context selected
  EXPECT_EQ(ReadChunk().type, kReplyTypeError);
  Request(kCmdRead, 6, 0, 64u << 20);  // over the payload limit
  EXPECT_EQ(ReadChunk().type, kReplyTypeError);
  // Still serving.
  Request(kCmdRead, 9, kSize - 65536, 4);
  Chunk ok = ReadChunk();
  EXPECT_EQ(ok.type, kReplyTypeOffsetData);
  EXPECT_EQ(ok.payload.substr(8), "AAAA");
  EXPECT_EQ(counters_.errors_total.load(), 6u);
}

TEST_F(NbdServerTest, WritesReadBackAndPipelinedRepliesMatchCookies) {
  StartServer();
  Greet();
  Go();
  for (uint64_t i = 0; i < 32; ++i)
    Request(kCmdWrite, 100 + i, i * 4096, 4096, i % 2 ? kCmdFlagFua : 0,
            std::string(4096, static_cast<char>('a' + i % 26)));
  std::set<uint64_t> seen;
  for (int i = 0; i < 32; ++i) {
    std::string h = Read(16);
    auto* p = reinterpret_cast<const uint8_t*>(h.data());
    EXPECT_EQ(Get32(p + 4), 0u);
    seen.insert(Get64(p + 8));
  }
  EXPECT_EQ(seen.size(), 32u);
  Request(kCmdFlush, 200, 0, 0);
  EXPECT_EQ(SimpleError(200), 0u);
  Request(kCmdRead, 201, 5 * 4096, 4096);
  EXPECT_EQ(SimpleError(201), 0u);
  EXPECT_EQ(Read(4096), std::string(4096, 'f'));
  Request(kCmdWriteZeroes, 202, 5 * 4096, 4096, kCmdFlagNoHole);
  EXPECT_EQ(SimpleError(202), 0u);
  Request(kCmdRead, 203, 5 * 4096, 4096);
  EXPECT_EQ(SimpleError(203), 0u);
  EXPECT_EQ(Read(4096), std::string(4096, '\0'));
  Request(kCmdDisc, 204, 0, 0);
  EXPECT_TRUE(Closed());
}

TEST_F(NbdServerTest, ReadOnlyExportRefusesWrites) {
  StartServer(/*writable=*/false);
  Greet();
  uint16_t flags = Go();
  EXPECT_TRUE(flags & kReadOnly);
  EXPECT_FALSE(flags & kSendTrim);
  Request(kCmdWrite, 1, 0, 512, 0, std::string(512, 'x'));
  EXPECT_EQ(SimpleError(1), kEperm);
  Request(kCmdTrim, 2, 0, 512);
  EXPECT_EQ(SimpleError(2), kEperm);
  Request(kCmdWrite, 3, 0, 512, kCmdFlagFua, std::string(512, 'x'));  // FUA not offered
  EXPECT_EQ(SimpleError(3), kEinval);
}

TEST_F(NbdServerTest, OversizedWriteDisconnects) {
  StartServer();
  Greet();
  Go();
  Request(kCmdWrite, 1, 0, 0x7fffffff);
  EXPECT_TRUE(Closed());
}

TEST_F(NbdServerTest, SilentClientIsDroppedAfterTheHandshakeTimeout) {
  StartServer();
  Read(18);  // the greeting, then nothing
  EXPECT_TRUE(Closed());
}

TEST_F(NbdServerTest, OldstyleOrUnknownClientFlagsAreRefused) {
  StartServer();
  Greet(0x80000001);
  EXPECT_TRUE(Closed());
}

TEST_F(NbdServerTest, ExportNameFallbackSendsSizeAndFlags) {
  StartServer();
  Greet(kClientFixedNewstyle);  // zeroes wanted
  Option(kOptExportName, "disk");
  std::string r = Read(8 + 2 + 124);
  EXPECT_EQ(Get64(reinterpret_cast<const uint8_t*>(r.data())), kSize);
  EXPECT_EQ(r.substr(10), std::string(124, '\0'));
  Request(kCmdRead, 1, kSize - 65536, 512);
  EXPECT_EQ(SimpleError(1), 0u);
  EXPECT_EQ(Read(512), std::string(512, 'A'));
}

}  // namespace
}  // namespace cloudkeep::nbd

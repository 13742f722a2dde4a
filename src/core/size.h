// Byte sizes as the command line spells them: "4096", "512K", "256M",
// "1.5G", "2GiB", "64MB". K, M, G, T (with or without "iB"/"B") are powers
// of 1024, as in dd, qemu-img and fio. Parsing never throws; a bad value is
// a kUsage Status naming the flag and the text.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace cloudkeep {

// `what` names the flag in the error, e.g. "--cache-size".
Result<uint64_t> ParseByteSize(std::string_view text, std::string_view what);

}  // namespace cloudkeep

// Text and JSON renderings of the mail audit's reports: `mail check`,
// `mail relay`, `mail rbl` and `mail ptr` print exactly these, so the
// layout is tested here (tests/unit/mail/check_render_test.cpp) on
// hand-built reports instead of through a live server.
//
// The text is laid out for PrintText (newlines as they are; untrusted
// strings pass through Table, which escapes them, or through PrintText's own
// escaping). The JSON of one relay/RBL/PTR report is the module's own
// (RelayReportToJson, RblReportToJson, PtrReportToJson).
#pragma once

#include <string>

#include "core/output.h"
#include "mail/check.h"
#include "mail/ptr_check.h"
#include "mail/rbl.h"
#include "mail/relay_probe.h"

namespace cloudkeep::mail {

// The heading of a group in the text of `mail check` ("Rule 2: SPF").
const char* CheckGroupTitle(CheckGroup group);

// `mail check`: the findings grouped under their titles, then the counts.
std::string MailCheckToText(const MailCheckReport& report);
Json MailCheckToJson(const MailCheckReport& report);

// `mail relay`: the session, one row per relay form, the verdict.
std::string RelayReportToText(const RelayReport& report);
// `mail rbl`: one row per blocklist, the verdict and how much answered.
std::string RblReportToText(const RblReport& report);
// `mail ptr`: one row per PTR name, the verdict or UNKNOWN.
std::string PtrReportToText(const PtrReport& report);

}  // namespace cloudkeep::mail

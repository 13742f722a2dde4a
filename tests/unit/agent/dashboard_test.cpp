// The dashboard's state: what the page reads, and nothing more.
#include "agent/dashboard.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace cloudkeep::agent {
namespace {

TEST(DashboardState, CarriesJobsRunsAndReportsButNoCommands) {
  DashboardInput in;
  in.host = "db1";
  in.now = TimePoint(std::chrono::seconds(1796000000));
  in.metrics.version = "0.1.0";
  JobMetrics snap;
  snap.name = "web-hourly";
  snap.kind = "snapshot";
  agent::Run last;
  last.job = "web-hourly";
  last.outcome = "failure";
  last.error = "volume gone";
  last.started = in.now;
  snap.last_run = last;
  JobMetrics mesh;
  mesh.name = "zones";
  mesh.kind = "mesh";
  in.metrics.jobs = {snap, mesh};
  in.job_volumes = {{"/srv/web.img"}, {}};
  in.runs = {last};
  in.reports = {{"zones", in.now, R"({"complete":true,"pairs":[]})"},
                {"broken", in.now, "not json"}};
  auto s = nlohmann::json::parse(DashboardStateJson(in));
  EXPECT_EQ(s["host"], "db1");
  ASSERT_EQ(s["jobs"].size(), 2u);
  EXPECT_EQ(s["jobs"][0]["volumes"][0], "/srv/web.img");
  EXPECT_EQ(s["jobs"][0]["last_run"]["error"], "volume gone");
  EXPECT_TRUE(s["jobs"][1]["last_run"].is_null());
  EXPECT_EQ(s["jobs"][0]["last_finished"]["outcome"], "failure");
  EXPECT_TRUE(s["jobs"][1]["last_finished"].is_null());
  EXPECT_EQ(s["runs"][0]["kind"], "snapshot");
  ASSERT_EQ(s["reports"].size(), 1u);  // the unparseable one is left out
  EXPECT_EQ(s["reports"][0]["kind"], "mesh");
  EXPECT_TRUE(s["reports"][0]["doc"]["complete"].get<bool>());
  for (const auto& j : s["jobs"]) {
    EXPECT_FALSE(j.contains("command"));
    EXPECT_FALSE(j.contains("env"));
  }
}

TEST(DashboardPage, NeedsNothingFromElsewhere) {
  const std::string& page = DashboardHtml();
  // The one URL in the page is SVG's namespace name, which is never fetched.
  std::string rest = page;
  for (size_t at; (at = rest.find("http://www.w3.org/2000/svg")) != std::string::npos;)
    rest.erase(at, 26);
  EXPECT_EQ(rest.find("http://"), std::string::npos);
  EXPECT_EQ(rest.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("innerHTML"), std::string::npos);  // text only, never markup
  EXPECT_NE(page.find("api/state"), std::string::npos);
  EXPECT_NE(page.find("name=\"viewport\""), std::string::npos);
}

}  // namespace
}  // namespace cloudkeep::agent

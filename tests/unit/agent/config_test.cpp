// The agent config: every error collected, one line each naming the file,
// line, job, key and value; the StepBuilder sees only command keys.
#include "agent/config.h"

#include <gtest/gtest.h>

#include <fstream>

namespace cloudkeep::agent {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  ConfigLoad Load(const std::string& text) {
    path_ = ::testing::TempDir() + "agent_config_test.toml";
    std::ofstream(path_) << text;
    return LoadConfig(path_, [this](JobConfig& j, std::vector<std::pair<int, std::string>>* e) {
      seen_.push_back(j.name);
      for (const auto& k : j.keys) {
        if (k.key == "bogus")
          e->push_back({k.line, "unknown key 'bogus' = " + k.values[0]});
        else
          j.steps.push_back({"--" + k.key, k.values[0]});
      }
    });
  }
  std::string path_;
  std::vector<std::string> seen_;
};

TEST_F(ConfigTest, AGoodFile) {
  auto l = Load(R"(
[agent]
listen = "127.0.0.1:0"
state_dir = "/tmp/x"
timezone = "Europe/Berlin"
history_max_runs = 50

[[job]]
name = "web-hourly"
kind = "snapshot"
schedule = "5 * * * *"
jitter = "2m"
keep_daily = 7

[[job]]
name = "tick"
kind = "exec"
every = "2s"
timeout = "30s"
command = ["/bin/echo", "hi"]
env = { GREETING = "hello" }
)");
  ASSERT_TRUE(l.config) << (l.errors.empty() ? "" : l.errors[0]);
  const AgentConfig& c = *l.config;
  EXPECT_EQ(c.listen, "127.0.0.1:0");
  EXPECT_EQ(c.timezone, "Europe/Berlin");
  EXPECT_EQ(c.history_max_runs, 50);
  ASSERT_EQ(c.jobs.size(), 2u);
  EXPECT_EQ(c.jobs[0].schedule->Describe(), "cron '5 * * * *' (jitter 2m)");
  EXPECT_EQ(c.jobs[0].steps.size(), 1u);
  EXPECT_EQ(c.jobs[1].schedule->Describe(), "every 2s");
  EXPECT_EQ(c.jobs[1].timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.jobs[1].command, (std::vector<std::string>{"/bin/echo", "hi"}));
  EXPECT_EQ(c.jobs[1].env, (std::vector<std::string>{"GREETING=hello"}));
  EXPECT_EQ(seen_, (std::vector<std::string>{"web-hourly"}));  // exec jobs have no command keys
}

TEST_F(ConfigTest, EveryErrorOnItsOwnLine) {
  auto l = Load(R"([agent]
listen = "0.0.0.0:7480"
colour = "blue"

[[job]]
name = "a"
kind = "snapshot"
schedule = "61 * * * *"
bogus = "x"

[[job]]
name = "a"
kind = "exec"
every = "15 minutes"
command = ["/bin/true"]
keep_daily = 3

[[job]]
kind = "tape"
)");
  EXPECT_FALSE(l.config);
  std::string all;
  for (const auto& e : l.errors) all += e + "\n";
  auto has = [&](const std::string& s) {
    EXPECT_NE(all.find(s), std::string::npos) << "missing: " << s << "\nin:\n" << all;
  };
  has(path_ + ":3: [agent] unknown key 'colour'");
  has(path_ +
      ":8: job 'a': schedule = \"61 * * * *\": cron '61 * * * *': minute 61 is out of 0-59");
  has(path_ + ":9: job 'a': unknown key 'bogus' = x");
  has(path_ + ":11: job 'a': name = \"a\": a second job of that name");
  has(path_ + ":14: job 'a': every = \"15 minutes\":");
  has(path_ + ":16: job 'a': unknown key 'keep_daily' for an exec job");
  has("job without a name");
  has("kind = \"tape\": one of snapshot, mesh, mail-check, exec");
  has("listen = \"0.0.0.0:7480\": an address other than loopback needs bearer_token_file");
  for (const auto& e : l.errors) EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST_F(ConfigTest, ScheduleRules) {
  auto both = Load(
      "[[job]]\nname = \"a\"\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n"
      "schedule = \"* * * * *\"\nevery = \"1m\"\n");
  ASSERT_FALSE(both.errors.empty());
  EXPECT_NE(both.errors[0].find("give schedule or every, not both"), std::string::npos);
  auto none = Load("[[job]]\nname = \"a\"\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n");
  ASSERT_FALSE(none.errors.empty());
  EXPECT_NE(none.errors[0].find("no schedule"), std::string::npos);
  auto zone = Load("[agent]\ntimezone = \"Mars/Olympus\"\n");
  ASSERT_FALSE(zone.errors.empty());
  EXPECT_NE(zone.errors[0].find("timezone = \"Mars/Olympus\""), std::string::npos);
  auto syntax = Load("[[job]\nname = 1\n");
  ASSERT_EQ(syntax.errors.size(), 1u);
  EXPECT_EQ(syntax.errors[0].rfind(path_ + ":1:", 0), 0u) << syntax.errors[0];
}

}  // namespace
}  // namespace cloudkeep::agent

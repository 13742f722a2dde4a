#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "snapshot/mysql_quiesce.h"

namespace cloudkeep::snapshot {
namespace {

TEST(MysqlStatus, LockModes) {
  EXPECT_EQ(*ParseMysqlLockMode("flush"), MysqlLockMode::kFlush);
  EXPECT_EQ(*ParseMysqlLockMode("backup-stage"), MysqlLockMode::kBackupStage);
  auto bad = ParseMysqlLockMode("global");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kUsage);
  EXPECT_NE(bad.status().message().find("'global'"), std::string::npos);
}

TEST(MysqlStatus, BackupStageNeedsMariaDb104) {
  EXPECT_TRUE(SupportsBackupStage("10.11.6-MariaDB-0+deb12u1", 101106));
  EXPECT_TRUE(SupportsBackupStage("10.4.0-MariaDB", 100400));
  EXPECT_FALSE(SupportsBackupStage("10.3.39-MariaDB", 100339));
  EXPECT_FALSE(SupportsBackupStage("8.0.36", 80036));  // MySQL 8 has no BACKUP STAGE
}

TEST(MysqlStatus, PrimaryPositions) {
  auto p = PositionsFromStatus(
      {{"File", "mysql-bin.000003"}, {"Position", "1234"}}, {},
      {{"gtid_binlog_pos", "0-1-42"}, {"gtid_current_pos", "0-1-42"}, {"gtid_slave_pos", ""}});
  EXPECT_EQ(p["binlog_file"], "mysql-bin.000003");
  EXPECT_EQ(p["binlog_position"], "1234");
  EXPECT_EQ(p["gtid_binlog_pos"], "0-1-42");
  EXPECT_EQ(p.count("relay_master_log_file"), 0u);
  EXPECT_EQ(p.count("gtid_slave_pos"), 0u);
}

TEST(MysqlStatus, ReplicaRecordsExecutedNotReadCoordinates) {
  std::map<std::string, std::string> slave = {
      {"Master_Host", "10.0.0.5"},
      {"Master_Port", "3306"},
      {"Master_Log_File", "mysql-bin.000010"},  // I/O thread: read
      {"Read_Master_Log_Pos", "9999"},
      {"Relay_Master_Log_File", "mysql-bin.000009"},  // SQL thread: executed
      {"Exec_Master_Log_Pos", "777"},
      {"Slave_SQL_Running", "Yes"}};
  auto p = PositionsFromStatus({}, slave, {{"gtid_slave_pos", "0-1-40"}});
  EXPECT_EQ(p["relay_master_log_file"], "mysql-bin.000009");
  EXPECT_EQ(p["exec_master_log_pos"], "777");
  EXPECT_EQ(p["gtid_slave_pos"], "0-1-40");
  EXPECT_EQ(p["master_host"], "10.0.0.5");
  EXPECT_EQ(p.count("binlog_file"), 0u);
}

TEST(MysqlStatus, StatusFileIsJson) {
  auto text = FormatStatusFile({{"binlog_file", "b.000001"}, {"binlog_position", "4"}},
                               "10.11.6-MariaDB", "2026-11-28T18:00:00.000Z");
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["positions"]["binlog_file"], "b.000001");
  EXPECT_EQ(j["server"], "10.11.6-MariaDB");
}

TEST(MysqlStatus, DefaultsFileChoice) {
  auto missing = ChooseDefaultsFile("/no/such/my.cnf", "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kUsage);
  EXPECT_NE(missing.status().message().find("'/no/such/my.cnf'"), std::string::npos);
  EXPECT_EQ(*ChooseDefaultsFile("", "/no/such/home"), "");
  EXPECT_EQ(*ChooseDefaultsFile(CK_SOURCE_DIR "/CMakeLists.txt", ""),
            CK_SOURCE_DIR "/CMakeLists.txt");
}

}  // namespace
}  // namespace cloudkeep::snapshot

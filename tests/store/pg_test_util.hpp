#pragma once
// PostgreSQL for tests: the server named by PBT_TEST_POSTGRES_URI (a URI to a server where
// the test may create databases, e.g. postgresql://postgres@127.0.0.1:54329/postgres;
// scripts/test.sh starts one), one fresh database per test, dropped afterwards.
// Without it (or in a build without PostgreSQL) the PostgreSQL tests are skipped, saying why.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

#ifdef PBT_WITH_POSTGRES
#include <libpq-fe.h>
#endif

namespace pbt::test {

// Why the PostgreSQL tests cannot run here; empty when they can.
inline std::string postgres_unavailable() {
#ifndef PBT_WITH_POSTGRES
  return "this build has no PostgreSQL store (configured with PBT_WITH_POSTGRES=OFF)";
#else
  const char* uri = std::getenv("PBT_TEST_POSTGRES_URI");
  if (!uri || !*uri)
    return "PBT_TEST_POSTGRES_URI is not set, so there is no PostgreSQL server to test against "
           "(scripts/test.sh starts one and sets it)";
  return "";
#endif
}

inline std::string postgres_admin_uri() {
  const char* uri = std::getenv("PBT_TEST_POSTGRES_URI");
  return uri ? uri : "";
}

// The URI with its database (path) replaced; the query string is kept.
inline std::string uri_with_database(const std::string& uri, const std::string& db) {
  const auto scheme = uri.find("://");
  const std::size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto path = uri.find_first_of("/?", start);
  const std::string head = path == std::string::npos ? uri : uri.substr(0, path);
  const auto q = uri.find('?', start);
  return head + "/" + db + (q == std::string::npos ? "" : uri.substr(q));
}

// The URI with one more query parameter.
inline std::string uri_with_param(const std::string& uri, const std::string& key, const std::string& value) {
  return uri + (uri.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
}

#ifdef PBT_WITH_POSTGRES

// A raw libpq connection that bypasses the store: to set up, inspect and break things.
class PgConnection {
 public:
  explicit PgConnection(const std::string& uri) : c_(PQconnectdb(uri.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) {
      std::string m = PQerrorMessage(c_);
      PQfinish(c_);
      c_ = nullptr;
      throw std::runtime_error("test: cannot connect to " + uri + ": " + m);
    }
    PQsetNoticeProcessor(
        c_, [](void*, const char*) {}, nullptr);
  }
  ~PgConnection() {
    if (c_) PQfinish(c_);
  }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  void exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    const auto st = PQresultStatus(r);
    std::string m = PQresultErrorMessage(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error("test: " + sql + ": " + m);
  }
  // The first column of the first row; "" when there is none or it is NULL.
  std::string scalar(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    const auto st = PQresultStatus(r);
    std::string out, m = PQresultErrorMessage(r);
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) out = PQgetvalue(r, 0, 0);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error("test: " + sql + ": " + m);
    return out;
  }
  std::int64_t count(const std::string& sql) { return std::stoll(scalar(sql)); }

 private:
  PGconn* c_;
};

// A fresh database on the test server (named pbt_test_<pid>_<n>), dropped with the object.
class PgDatabase {
 public:
  PgDatabase() {
    static std::atomic<int> counter{0};
    const auto t = std::chrono::system_clock::now().time_since_epoch().count();
    name_ = "pbt_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(static_cast<long long>(t % 1000000));
    PgConnection(postgres_admin_uri()).exec("CREATE DATABASE " + name_);
    uri_ = uri_with_database(postgres_admin_uri(), name_);
  }
  ~PgDatabase() {
    try {
      PgConnection(postgres_admin_uri()).exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
    }
  }
  PgDatabase(const PgDatabase&) = delete;
  PgDatabase& operator=(const PgDatabase&) = delete;
  const std::string& name() const { return name_; }
  const std::string& uri() const { return uri_; }

 private:
  std::string name_, uri_;
};

#endif  // PBT_WITH_POSTGRES

}  // namespace pbt::test

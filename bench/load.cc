// wxbench_load: an open-loop load client for blackbox_exporter, so it probes wxsim at the same
// rate wxcanary does. Request k is due at start + k/RATE; CONNS threads with keep-alive take
// the next due request, so a slow exporter shows up as lateness, not as a lower offered rate.
// Bounded: stops after DURATION seconds (plus one timeout at most).
//
//   wxbench_load PORT MODULE URLS_FILE RATE DURATION CONNS
// prints: "sent N success S seconds T rate R p50_ms A p99_ms B late_p99_ms C"
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <httplib.h>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 7) {
    std::cerr << "usage: wxbench_load PORT MODULE URLS_FILE RATE DURATION CONNS\n";
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const std::string module = argv[2];
  const double rate = std::atof(argv[4]), duration = std::atof(argv[5]);
  const int conns = std::max(1, std::atoi(argv[6]));
  std::vector<std::string> paths;
  {
    std::ifstream in(argv[3]);
    for (std::string url; std::getline(in, url);)
      if (!url.empty())
        paths.push_back("/probe?module=" + module +
                        "&target=" + httplib::detail::encode_query_param(url));
  }
  if (paths.empty() || rate <= 0 || duration <= 0) {
    std::cerr << "wxbench_load: need URLs, RATE > 0 and DURATION > 0\n";
    return 2;
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now() + std::chrono::milliseconds{100};
  const auto total = static_cast<uint64_t>(rate * duration);
  std::atomic<uint64_t> next{0}, success{0}, sent{0};
  std::mutex mu;
  std::vector<double> latency_ms, late_ms;
  latency_ms.reserve(total);
  late_ms.reserve(total);

  auto worker = [&] {
    httplib::Client c("127.0.0.1", port);
    c.set_keep_alive(true);
    c.set_read_timeout(10, 0);
    std::vector<double> lat, late;
    while (true) {
      uint64_t k = next.fetch_add(1);
      if (k >= total) break;
      auto due = start + std::chrono::nanoseconds{static_cast<int64_t>(k * 1e9 / rate)};
      std::this_thread::sleep_until(due);
      auto t0 = Clock::now();
      auto res = c.Get(paths[k % paths.size()]);
      auto t1 = Clock::now();
      sent.fetch_add(1);
      if (res && res->status == 200 && res->body.find("\nprobe_success 1") != std::string::npos)
        success.fetch_add(1);
      lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      late.push_back(std::chrono::duration<double, std::milli>(t0 - due).count());
    }
    std::lock_guard lock(mu);
    latency_ms.insert(latency_ms.end(), lat.begin(), lat.end());
    late_ms.insert(late_ms.end(), late.begin(), late.end());
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < conns; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  auto pct = [](std::vector<double>& v, double p) {
    if (v.empty()) return 0.0;
    auto i = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
    return v[i];
  };
  std::cout << "sent " << sent << " success " << success << " seconds " << secs << " rate "
            << static_cast<double>(sent) / secs << " p50_ms " << pct(latency_ms, 0.5) << " p99_ms "
            << pct(latency_ms, 0.99) << " late_p99_ms " << pct(late_ms, 0.99) << "\n";
  return success == sent ? 0 : 1;
}

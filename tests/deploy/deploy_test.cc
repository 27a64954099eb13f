// Offline checks of Dockerfile and deploy/kubernetes/ (see CMakeLists.txt for what is and is
// not covered: nothing here builds an image or talks to a cluster).
#include <yaml-cpp/yaml.h>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "support/process.h"

namespace wxcanary::testing {
namespace {

std::filesystem::path Kube() { return SourceDir() / "deploy" / "kubernetes"; }

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Every document of every manifest, by kind.
std::map<std::string, YAML::Node> Manifests() {
  std::map<std::string, YAML::Node> by_kind;
  for (const auto& entry : std::filesystem::directory_iterator(Kube())) {
    if (entry.path().extension() != ".yaml") continue;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
      EXPECT_TRUE(doc["apiVersion"] && doc["kind"] && doc["metadata"]["name"])
          << entry.path() << ": apiVersion, kind and metadata.name are required";
      by_kind[doc["kind"].as<std::string>()] = doc;
    }
  }
  return by_kind;
}

TEST(Kubernetes, has_the_objects_a_deployment_needs) {
  auto m = Manifests();
  for (std::string kind :
       {"StatefulSet", "Service", "ConfigMap", "Secret", "ServiceMonitor", "PrometheusRule"})
    EXPECT_TRUE(m.count(kind)) << kind << " missing from deploy/kubernetes";
  EXPECT_EQ(m["StatefulSet"]["apiVersion"].as<std::string>(), "apps/v1");
  EXPECT_EQ(m["ServiceMonitor"]["apiVersion"].as<std::string>(), "monitoring.coreos.com/v1");
  EXPECT_EQ(m["PrometheusRule"]["apiVersion"].as<std::string>(), "monitoring.coreos.com/v1");
}

TEST(Kubernetes, statefulset_shards_by_ordinal_runs_non_root_and_mounts_secrets_as_files) {
  auto m = Manifests();
  YAML::Node sts = m["StatefulSet"];
  YAML::Node spec = sts["spec"];
  ASSERT_TRUE(spec["selector"]["matchLabels"]) << "spec.selector is required";
  // The selector must select the pod template (the API server rejects it otherwise).
  for (const auto& kv : spec["selector"]["matchLabels"])
    EXPECT_EQ(spec["template"]["metadata"]["labels"][kv.first.as<std::string>()].as<std::string>(),
              kv.second.as<std::string>());
  EXPECT_EQ(spec["serviceName"].as<std::string>(),
            m["Service"]["metadata"]["name"].as<std::string>());

  YAML::Node pod = spec["template"]["spec"];
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  EXPECT_NE(pod["securityContext"]["runAsUser"].as<int>(), 0);
  ASSERT_EQ(pod["containers"].size(), 1u);
  YAML::Node c = pod["containers"][0];
  ASSERT_TRUE(c["name"] && c["image"]) << "containers[].name and image are required";

  // --shard=ORDINAL/N with N = replicas.
  std::string args;
  for (const auto& a : c["args"]) args += a.as<std::string>() + " ";
  EXPECT_NE(args.find("--shard=\"${HOSTNAME##*-}/${WXCANARY_SHARDS}\""), std::string::npos) << args;
  std::map<std::string, std::string> env;
  for (const auto& e : c["env"]) env[e["name"].as<std::string>()] = e["value"].as<std::string>();
  EXPECT_EQ(env["WXCANARY_SHARDS"], spec["replicas"].as<std::string>())
      << "WXCANARY_SHARDS must equal spec.replicas, or apps go unprobed";

  EXPECT_EQ(c["ports"][0]["containerPort"].as<int>(), 10090);
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/-/healthy");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/-/ready");
  EXPECT_FALSE(c["securityContext"]["allowPrivilegeEscalation"].as<bool>());

  // The Secret is a volume (files), at $CREDENTIALS_DIRECTORY, never an env var.
  std::map<std::string, std::string> mounts;
  for (const auto& v : c["volumeMounts"])
    mounts[v["name"].as<std::string>()] = v["mountPath"].as<std::string>();
  bool secret_volume = false;
  for (const auto& v : pod["volumes"]) {
    if (!v["secret"]) continue;
    secret_volume = true;
    EXPECT_EQ(v["secret"]["secretName"].as<std::string>(),
              m["Secret"]["metadata"]["name"].as<std::string>());
    EXPECT_EQ(mounts[v["name"].as<std::string>()], env["CREDENTIALS_DIRECTORY"]);
  }
  EXPECT_TRUE(secret_volume);
  for (const auto& e : c["env"]) EXPECT_FALSE(e["valueFrom"]) << "secrets come as files, not env";
  EXPECT_EQ(mounts["config"], "/etc/wxcanary");
}

TEST(Kubernetes, service_and_servicemonitor_reach_the_pods_metrics_port) {
  auto m = Manifests();
  YAML::Node pod_labels = m["StatefulSet"]["spec"]["template"]["metadata"]["labels"];
  YAML::Node svc = m["Service"];
  for (const auto& kv : svc["spec"]["selector"])
    EXPECT_EQ(pod_labels[kv.first.as<std::string>()].as<std::string>(),
              kv.second.as<std::string>());
  std::string port_name = svc["spec"]["ports"][0]["name"].as<std::string>();
  EXPECT_EQ(svc["spec"]["ports"][0]["port"].as<int>(), 10090);
  YAML::Node sm = m["ServiceMonitor"];
  for (const auto& kv : sm["spec"]["selector"]["matchLabels"])
    EXPECT_EQ(svc["metadata"]["labels"][kv.first.as<std::string>()].as<std::string>(),
              kv.second.as<std::string>());
  EXPECT_EQ(sm["spec"]["endpoints"][0]["port"].as<std::string>(), port_name);
  EXPECT_EQ(sm["spec"]["endpoints"][0]["path"].as<std::string>(), "/metrics");
  // The rules' `up` check matches job=~".*wxcanary.*"; the operator names the job after the
  // Service.
  EXPECT_NE(svc["metadata"]["name"].as<std::string>().find("wxcanary"), std::string::npos);
}

TEST(Kubernetes, prometheusrule_holds_exactly_the_shipped_rules) {
  YAML::Node rule = Manifests()["PrometheusRule"];
  YAML::Node source = YAML::LoadFile((SourceDir() / "alerts" / "wxcanary.rules.yml").string());
  EXPECT_EQ(YAML::Dump(rule["spec"]), YAML::Dump(source));
  EXPECT_GE(rule["spec"]["groups"].size(), 1u);
}

TEST(Kubernetes, configmap_config_passes_config_check_with_the_secret_files) {
  auto m = Manifests();
  TempDir dir;
  std::ofstream(dir.path() / "wxcanary.yml")
      << m["ConfigMap"]["data"]["wxcanary.yml"].as<std::string>();
  std::filesystem::create_directory(dir.path() / "creds");
  // One file per key of the Secret, as the volume mount lays them out.
  for (const auto& kv : m["Secret"]["stringData"])
    std::ofstream(dir.path() / "creds" / kv.first.as<std::string>()) << "test-value-not-printed\n";
  Subprocess check(
      {BuiltBinary("wxcanary").string(), "--config.file=" + (dir.path() / "wxcanary.yml").string(),
       "--config.check", "--shard=1/2"},
      dir.path() / "check.log", {"CREDENTIALS_DIRECTORY=" + (dir.path() / "creds").string()});
  int status = check.Wait(std::chrono::seconds{30});
  ASSERT_TRUE(WIFEXITED(status)) << check.Output();
  EXPECT_EQ(WEXITSTATUS(status), 0) << check.Output();
  EXPECT_NE(check.Output().find("shard 1/2"), std::string::npos) << check.Output();
  EXPECT_EQ(check.Output().find("test-value-not-printed"), std::string::npos);
}

// --- Dockerfile ------------------------------------------------------------------------------

std::vector<std::string> DockerInstructions() {
  // Joins continuation lines, drops comments.
  std::vector<std::string> out;
  std::istringstream in(ReadAll(SourceDir() / "Dockerfile"));
  std::string line, cur;
  while (std::getline(in, line)) {
    if (cur.empty() && (line.empty() || line[0] == '#')) continue;
    bool cont = !line.empty() && line.back() == '\\';
    cur += cont ? line.substr(0, line.size() - 1) : line;
    if (!cont) {
      out.push_back(cur);
      cur.clear();
    }
  }
  return out;
}

TEST(Dockerfile, is_multi_stage_debian_12_non_root_with_healthcheck_and_port) {
  auto ins = DockerInstructions();
  std::vector<std::string> from;
  std::string user, healthcheck, expose, entrypoint;
  bool copy_from_build = false;
  for (const auto& i : ins) {
    if (i.rfind("FROM ", 0) == 0) from.push_back(i);
    if (i.rfind("USER ", 0) == 0) user = i.substr(5);
    if (i.rfind("HEALTHCHECK ", 0) == 0) healthcheck = i;
    if (i.rfind("EXPOSE ", 0) == 0) expose = i.substr(7);
    if (i.rfind("ENTRYPOINT ", 0) == 0) entrypoint = i;
    if (i.rfind("COPY --from=", 0) == 0) copy_from_build = true;
  }
  ASSERT_GE(from.size(), 2u) << "multi-stage";
  for (const auto& f : from)
    EXPECT_TRUE(std::regex_search(f, std::regex("FROM debian:12(-slim)?( |$)"))) << f;
  EXPECT_TRUE(copy_from_build);
  EXPECT_FALSE(user.empty()) << "no USER: the image would run as root";
  EXPECT_NE(user.substr(0, user.find(':')), "0");
  EXPECT_NE(user.substr(0, user.find(':')), "root");
  EXPECT_NE(healthcheck.find("/-/healthy"), std::string::npos) << healthcheck;
  EXPECT_NE(healthcheck.find(":10090"), std::string::npos) << healthcheck;
  EXPECT_EQ(expose, "10090");
  EXPECT_NE(entrypoint.find("/usr/bin/wxcanary"), std::string::npos) << entrypoint;
  // The Kubernetes securityContext runs as the image's user.
  auto sts = Manifests()["StatefulSet"];
  EXPECT_EQ(user,
            sts["spec"]["template"]["spec"]["securityContext"]["runAsUser"].as<std::string>() +
                ":" +
                sts["spec"]["template"]["spec"]["securityContext"]["runAsGroup"].as<std::string>());
}

std::set<std::string> Words(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  std::string w;
  while (in >> w) out.insert(w);
  return out;
}

TEST(Dockerfile, build_stage_installs_only_packages_scripts_bootstrap_installs) {
  // The image builds with the packages the project is tested with, nothing else.
  std::string bootstrap = ReadAll(SourceDir() / "scripts" / "bootstrap");
  auto begin = bootstrap.find("packages=(");
  auto end = bootstrap.find("\n)", begin);
  ASSERT_NE(begin, std::string::npos);
  std::string list;
  std::istringstream in(bootstrap.substr(begin + 10, end - begin - 10));
  for (std::string line; std::getline(in, line);) list += line.substr(0, line.find('#')) + " ";
  auto known = Words(list);
  bool found = false;
  for (const auto& i : DockerInstructions()) {
    auto pos = i.find("--no-install-recommends");
    if (i.rfind("RUN ", 0) != 0 || pos == std::string::npos || i.find("cmake") == std::string::npos)
      continue;
    found = true;
    std::string pkgs = i.substr(pos + 23);
    pkgs = pkgs.substr(0, pkgs.find("&&"));
    for (const auto& p : Words(pkgs))
      EXPECT_TRUE(known.count(p)) << p << " is not in scripts/bootstrap";
  }
  EXPECT_TRUE(found) << "no apt-get install in the build stage";
}

}  // namespace
}  // namespace wxcanary::testing

# wxcanary container image: Debian 12, the release .deb built in a first stage and installed
# (with its runtime libraries) in a slim second one, run as a non-root user.
#   docker build -t wxcanary .
#   docker run -p 10090:10090 -v $PWD/wxcanary.yml:/etc/wxcanary/wxcanary.yml:ro \
#              -v $PWD/credentials:/run/credentials/wxcanary:ro wxcanary
# Secrets: the config names them (password_credential: NAME, secret_credential: NAME) and the
# daemon reads $CREDENTIALS_DIRECTORY/NAME; mount one file per secret there (a Kubernetes
# Secret volume does exactly that: deploy/kubernetes/).
# Checked offline by tests/deploy (no container runtime on the build machines).

FROM debian:12 AS build
# The build dependencies, a subset of scripts/bootstrap's list (tests/deploy checks that).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config git file dpkg-dev \
      prometheus-cpp-dev libcurl4-openssl-dev nlohmann-json3-dev libhiredis-dev \
      libspdlog-dev libyaml-cpp-dev libcli11-dev libsystemd-dev libcpp-httplib-dev \
      libssl-dev libcrypt-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The same package as scripts/package: preset "package" (release flags, no sanitizers, /usr).
RUN rm -rf build/package \
 && cmake --preset package \
 && cmake --build --preset package \
 && cpack --preset deb -B /out

FROM debian:12-slim
COPY --from=build /out/wxcanary_*.deb /tmp/
# apt resolves the package's Depends (libcurl, hiredis, yaml-cpp, ...); curl is for HEALTHCHECK.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl /tmp/wxcanary_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/wxcanary_*.deb \
 && useradd --system --uid 10090 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin wxcanary
ENV CREDENTIALS_DIRECTORY=/run/credentials/wxcanary
USER 10090:10090
EXPOSE 10090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:10090/-/healthy || exit 1
ENTRYPOINT ["/usr/bin/wxcanary"]
CMD ["--config.file=/etc/wxcanary/wxcanary.yml"]

# Install layout and the Debian package: binary, systemd unit, example config, alert rules and
# dashboards. Included last from the top-level CMakeLists.txt.
#
# Paths follow GNUInstallDirs, so `cmake --install` with the default prefix /usr/local gives
# /usr/local/bin/wxcanary, /usr/local/lib/systemd/system/wxcanary.service (systemd reads that
# directory too) and /usr/local/etc/wxcanary/wxcanary.yml, and the unit is rewritten to match.
# A Debian-layout package (/usr/bin, /usr/lib/systemd/system, /etc/wxcanary) comes from a build
# configured with -DCMAKE_INSTALL_PREFIX=/usr: the package lays out exactly what
# `cmake --install` would, so the unit always points at the binary the package ships.

set(WXCANARY_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit goes, relative to CMAKE_INSTALL_PREFIX")
set(WXCANARY_CONFIG_DIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/wxcanary")

# The unit in the source tree is written for the Debian layout (/usr/bin, /etc); rewrite its
# paths for this prefix rather than keeping a second copy that could drift.
file(READ ${PROJECT_SOURCE_DIR}/systemd/wxcanary.service wxcanary_unit)
string(REPLACE "/usr/bin/wxcanary" "${CMAKE_INSTALL_FULL_BINDIR}/wxcanary" wxcanary_unit
       "${wxcanary_unit}")
string(REPLACE "/etc/wxcanary/" "${WXCANARY_CONFIG_DIR}/" wxcanary_unit "${wxcanary_unit}")
string(REPLACE "/etc/default/wxcanary" "${CMAKE_INSTALL_FULL_SYSCONFDIR}/default/wxcanary"
       wxcanary_unit "${wxcanary_unit}")
string(REPLACE "/usr/share/doc/wxcanary/" "${CMAKE_INSTALL_FULL_DOCDIR}/" wxcanary_unit
       "${wxcanary_unit}")
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/systemd/wxcanary.service CONTENT "${wxcanary_unit}"
     @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${PROJECT_SOURCE_DIR}/systemd/wxcanary.service)

install(FILES ${PROJECT_BINARY_DIR}/systemd/wxcanary.service DESTINATION ${WXCANARY_UNIT_DIR})
# The example twice: pristine under doc/, and as the starting config (a dpkg conffile, so an
# edited copy survives upgrades). World-readable: the dynamic user must read it; it holds no
# secrets (those are systemd credentials).
install(FILES ${PROJECT_SOURCE_DIR}/systemd/wxcanary.yml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/wxcanary.yml DESTINATION ${WXCANARY_CONFIG_DIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# Extra flags for the unit ($ARGS), a conffile like the config.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/default DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default
        RENAME wxcanary PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# Documentation: the README (its Deploying section is what postinst points at), the docs, the
# licence in Debian's copyright format and a changelog (both required in a .deb).
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
set(WXCANARY_MAINTAINER "wxcanary maintainers <wxcanary@example.com>" CACHE STRING
    "Maintainer field of the .deb and its changelog (scripts/package sets it from DEBFULLNAME/DEBEMAIL)")
configure_file(${PROJECT_SOURCE_DIR}/packaging/changelog.in ${PROJECT_BINARY_DIR}/packaging/changelog @ONLY)
# gzip -n: no name or time stamp in the header, so the package is reproducible.
execute_process(COMMAND gzip -9nc ${PROJECT_BINARY_DIR}/packaging/changelog
                OUTPUT_FILE ${PROJECT_BINARY_DIR}/packaging/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/alerts/wxcanary.rules.yml
              ${PROJECT_SOURCE_DIR}/alerts/alertmanager.example.yml
              ${PROJECT_SOURCE_DIR}/alerts/runbook.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/wxcanary/alerts)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/dashboards/ DESTINATION ${CMAKE_INSTALL_DATADIR}/wxcanary/dashboards
        FILES_MATCHING PATTERN "*.json")

# Where things land, for tests/systemd/check_deb.sh to check the package against.
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/packaging/layout.sh CONTENT [=[
bindir=@CMAKE_INSTALL_FULL_BINDIR@
unitdir=@CMAKE_INSTALL_PREFIX@/@WXCANARY_UNIT_DIR@
configdir=@WXCANARY_CONFIG_DIR@
docdir=@CMAKE_INSTALL_FULL_DOCDIR@
datadir=@CMAKE_INSTALL_FULL_DATADIR@
]=] @ONLY)

# --- Debian package ------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wxcanary)
set(CPACK_PACKAGE_VENDOR "wxcanary")
set(CPACK_PACKAGE_CONTACT "${WXCANARY_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_PACKAGE_DESCRIPTION [=[wxcanary reads each WeChat access token exactly where an application caches
it in Redis, sends a periodic canary API call with it, and exports what it
finds as Prometheus metrics and ECS JSON logs: token age and TTL, refreshes,
every probe outcome by errcode, and environments that fight over one AppId.
Optionally it evicts a stale token so the application fetches a fresh one.
The package ships a hardened systemd unit, an example config, alert rules
with a runbook, and a Grafana dashboard.]=])
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Runtime library dependencies (libcurl, hiredis, yaml-cpp, prometheus-cpp, ...) from the
# binaries themselves, via dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "prometheus")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "redis-server, prometheus-alertmanager")
# Strip the RelWithDebInfo binary: CPack moves its symbols to wxcanary-dbgsym_VERSION_ARCH.ddeb
# (under /usr/lib/debug/.build-id/, where gdb looks) and strips the copy in the .deb. Not
# CPACK_STRIP_FILES: that strips first, leaving nothing for the -dbgsym package.
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
# Lay out the package exactly as `cmake --install` does for the configured prefix, including
# the absolute /etc path when the prefix is /usr.
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_SET_DESTDIR ON)
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "wxcanary package: prefix ${CMAKE_INSTALL_PREFIX}; configure with "
                 "-DCMAKE_INSTALL_PREFIX=/usr for the Debian layout")
endif()

# Maintainer scripts (packaging/): make systemd see the unit (and forget it on removal) without
# enabling or starting it: the example config must be edited first, which postinst says.
set(wxcanary_deb_dir ${PROJECT_BINARY_DIR}/packaging/deb)
file(WRITE ${wxcanary_deb_dir}/conffiles
     "${WXCANARY_CONFIG_DIR}/wxcanary.yml\n${CMAKE_INSTALL_FULL_SYSCONFDIR}/default/wxcanary\n")
foreach(script postinst prerm postrm)
  file(COPY ${PROJECT_SOURCE_DIR}/packaging/${script} DESTINATION ${wxcanary_deb_dir}
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                        WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${wxcanary_deb_dir}/conffiles ${wxcanary_deb_dir}/postinst ${wxcanary_deb_dir}/prerm
    ${wxcanary_deb_dir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)

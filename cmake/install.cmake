# Install, export and package (issue #20): `cmake --install build [--prefix P]` puts
#   bin/pbt                               the command
#   include/pbt/*.hpp                     the public headers, pbt/version.hpp (generated) among them
#   lib/libpbt_{core,store,report}.a      the libraries (static; their dependencies below)
#   lib/cmake/pbt/                        find_package(pbt CONFIG): pbt::core, pbt::store, pbt::report,
#                                         pbt::plugin_api (what a trainable plugin builds against)
#   lib/pkgconfig/pbt.pc                  pkg-config --cflags --libs pbt
#   share/pbt/python/pbt_trainer.py       the process protocol's Python side (stdlib only): put
#                                         this directory on PYTHONPATH
#   share/doc/pbt/                        README.md, protocol.md
# (lib is GNUInstallDirs' libdir: lib/<multiarch> when configured with prefix /usr.)
# `cpack -G DEB` in the build directory makes pbt_<version>_<arch>.deb of the same, prefix /usr.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PBT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/pbt)
set(PBT_INSTALL_PYTHONDIR ${CMAKE_INSTALL_DATADIR}/pbt/python)

set_target_properties(pbt_core PROPERTIES EXPORT_NAME core)
set_target_properties(pbt_store PROPERTIES EXPORT_NAME store)
set_target_properties(pbt_report PROPERTIES EXPORT_NAME report)
set_target_properties(pbt_plugin_api PROPERTIES EXPORT_NAME plugin_api)  # headers only: for plugins
install(TARGETS pbt_core pbt_store pbt_report pbt_plugin_api EXPORT pbtTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS pbt RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Trainable plugins (the LibTorch one when it is a plugin target) go beside the libraries, where
# the plugin search path can find them; one line per plugin target, e.g.:
#   install(TARGETS pbt_torch_plugin LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/pbt/plugins)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/pbt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PBT_GENERATED_INCLUDE}/pbt/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pbt)
install(FILES ${PROJECT_SOURCE_DIR}/python/pbt_trainer.py DESTINATION ${PBT_INSTALL_PYTHONDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/protocol.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The CMake package. The libraries are static, so their private dependencies are the
# consumer's to link too: pbtConfig.cmake finds them (find_dependency) before the targets.
install(EXPORT pbtTargets NAMESPACE pbt:: DESTINATION ${PBT_INSTALL_CMAKEDIR} FILE pbtTargets.cmake)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/pbtConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/pbtConfig.cmake INSTALL_DESTINATION ${PBT_INSTALL_CMAKEDIR})
# 0.x: a minor version may change the API.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/pbtConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pbtConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/pbtConfigVersion.cmake
        DESTINATION ${PBT_INSTALL_CMAKEDIR})

# pkg-config: relocatable (prefix found from the .pc file's own place), so the same file
# serves --prefix installs and the .deb.
set(PBT_PC_REQUIRES "nlohmann_json, tomlplusplus, sqlite3, libcrypto, cpp-httplib")
if(PBT_WITH_POSTGRES)
  string(APPEND PBT_PC_REQUIRES ", libpq")
endif()
file(RELATIVE_PATH PBT_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${PROJECT_SOURCE_DIR}/cmake/pbt.pc.in ${CMAKE_CURRENT_BINARY_DIR}/pbt.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pbt.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The .deb. Depends: the shared libraries the binaries link (dpkg-shlibdeps), plus the
# development packages a consumer of the static libraries and of pbtConfig.cmake needs.
set(CPACK_PACKAGE_NAME pbt)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Population Based Training (Jaderberg et al. 2017): the pbt command and C++ library")
set(CPACK_PACKAGE_CONTACT "pbt maintainers <pbt@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # pbt_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(PBT_DEB_DEPENDS "nlohmann-json3-dev, libtomlplusplus-dev, libsqlite3-dev, libssl-dev, libcpp-httplib-dev, pkg-config")
if(PBT_WITH_POSTGRES)
  string(APPEND PBT_DEB_DEPENDS ", libpq-dev")
endif()
set(CPACK_DEBIAN_PACKAGE_DEPENDS ${PBT_DEB_DEPENDS})
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3")   # share/pbt/python/pbt_trainer.py
include(CPack)

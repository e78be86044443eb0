# Install rules and CPack (.deb): `cmake --build build --target package` writes
# build/diffusion-forcing-studio_<version>_amd64.deb.
include(GNUInstallDirs)
install(TARGETS dforce RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET dfstudio)
  install(TARGETS dfstudio RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/models/demo.safetensors)
  install(FILES ${PROJECT_SOURCE_DIR}/models/demo.safetensors ${PROJECT_SOURCE_DIR}/models/README.md
          DESTINATION ${CMAKE_INSTALL_DATADIR}/dfstudio/models)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/resources/samples)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/resources/samples/ DESTINATION ${CMAKE_INSTALL_DATADIR}/dfstudio/samples)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/resources/dfstudio.desktop)
  install(FILES ${PROJECT_SOURCE_DIR}/resources/dfstudio.desktop DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/resources/icons/dfstudio.png)
  # The desktop entry says Icon=dfstudio.
  install(FILES ${PROJECT_SOURCE_DIR}/resources/icons/dfstudio.png
          DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/128x128/apps)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/resources/icons/dfstudio.svg)
  install(FILES ${PROJECT_SOURCE_DIR}/resources/icons/dfstudio.svg
          DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps)
endif()
# Desktop integration: the .dfsproj MIME type (the desktop entry lists it in MimeType=, so a file
# manager opens a project with the Studio) and the AppStream metainfo. Debian's
# shared-mime-info, desktop-file-utils and hicolor-icon-theme triggers refresh their caches when
# the package installs files into these folders.
install(FILES ${PROJECT_SOURCE_DIR}/resources/dfstudio-mime.xml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/mime/packages RENAME dfstudio.xml)
install(FILES ${PROJECT_SOURCE_DIR}/resources/dfstudio.metainfo.xml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo
        RENAME org.dfstudio.DiffusionForcingStudio.metainfo.xml)

# Man pages, generated at build time from each program's --help (and for dforce every
# subcommand's) by cmake/DfsManPage.cmake: they cannot drift from the options the programs take.
set(dfs_man_pages "")
set(dfs_man_programs dforce)
if(TARGET dfstudio)
  list(APPEND dfs_man_programs dfstudio)
endif()
foreach(prog ${dfs_man_programs})
  set(page ${CMAKE_BINARY_DIR}/man/${prog}.1.gz)
  set(subs OFF)
  if(prog STREQUAL "dforce")
    set(subs ON)
  endif()
  add_custom_command(
    OUTPUT ${page}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${CMAKE_COMMAND} -DEXE=$<TARGET_FILE:${prog}> -DNAME=${prog}
            -DVERSION=${PROJECT_VERSION} -DOUT=${page} -DSUBCOMMANDS=${subs}
            "-DDESCRIPTION=the Diffusion Forcing Studio desktop application"
            -P ${PROJECT_SOURCE_DIR}/cmake/DfsManPage.cmake
    DEPENDS ${prog} ${PROJECT_SOURCE_DIR}/cmake/DfsManPage.cmake
    COMMENT "Man page ${prog}(1) from '${prog} --help'"
    VERBATIM)
  list(APPEND dfs_man_pages ${page})
endforeach()
# Part of `all`, so `cpack` always has them; DFS_BUILD_MAN_PAGES=OFF skips them (dforce's ~25
# --help runs take ~30 s on a busy 2-core machine, after every relink of dforce).
option(DFS_BUILD_MAN_PAGES "Generate the man pages from --help at build time" ON)
if(DFS_BUILD_MAN_PAGES)
  add_custom_target(man_pages ALL DEPENDS ${dfs_man_pages})
endif()
if(DFS_BUILD_MAN_PAGES)
  install(FILES ${dfs_man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME diffusion-forcing-studio)
set(CPACK_PACKAGE_VENDOR "Diffusion Forcing Studio")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Generate, extend and edit video with Diffusion Forcing")
set(CPACK_PACKAGE_CONTACT "Diffusion Forcing Studio developers")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION video)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Generate, extend and edit video with Diffusion Forcing\n\
Diffusion Forcing Studio extends and edits video clips with a Diffusion Forcing video model: \
a desktop application (dfstudio) and a command-line tool (dforce), with a small demo model \
and a sample clip.")
# Opening the sample clip and exporting go through FFmpeg's libraries (shlibdeps finds those);
# the MIME database and desktop caches are refreshed by these packages' triggers when present.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "shared-mime-info, desktop-file-utils")
# The optimised BLAS is a run-time choice of Debian's alternatives, not a link dependency.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-pthread")
include(CPack)

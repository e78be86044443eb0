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

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME diffusion-forcing-studio)
set(CPACK_PACKAGE_VENDOR "Diffusion Forcing Studio")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Generate, extend and edit video with Diffusion Forcing")
set(CPACK_PACKAGE_CONTACT "Diffusion Forcing Studio developers")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The optimised BLAS is a run-time choice of Debian's alternatives, not a link dependency.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-pthread")
include(CPack)

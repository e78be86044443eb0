# Writes a man page (roff, gzipped) from a program's --help, and for each of its subcommands
# (and their subcommands) from `<program> <sub> --help`. Run as a script at build time:
#
#   cmake -DEXE=<built program> -DNAME=dforce -DVERSION=0.1.0 -DOUT=<dir>/dforce.1.gz
#         -DSUBCOMMANDS=ON -P cmake/DfsManPage.cmake
#
# No help2man: the help texts are CLI11's and QCommandLineParser's, whose layout is regular
# ("Usage:", "Options:" / "Subcommands:" headings, two-space-indented entries), so each
# heading becomes a .SS and the entries stay as the program prints them (no-fill).
cmake_minimum_required(VERSION 3.22)

foreach(var EXE NAME VERSION OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "DfsManPage.cmake: -D${var}=... is required")
  endif()
endforeach()

# --help of `EXE args...` into `out_var`, with the build path of the program replaced by NAME.
function(dfs_help out_var)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env QT_QPA_PLATFORM=offscreen ${EXE} ${ARGN} --help
                  OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR text STREQUAL "")
    message(FATAL_ERROR "DfsManPage.cmake: '${EXE} ${ARGN} --help' failed (${rc}): ${err}")
  endif()
  string(REPLACE "${EXE}" "${NAME}" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

# Help text -> roff body: escapes backslashes, minus signs and leading dots/quotes; headings
# ("Options:") become .SS; the rest is printed as is (no-fill).
# With `bold_headings`, headings stay inside the text in bold (for a subcommand under its .SS).
function(dfs_roff out_var text bold_headings)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  if(bold_headings)
    string(REGEX REPLACE "(^|\n)([A-Z][A-Za-z ]*):[ ]*\n" "\\1\\\\fB\\2:\\\\fR\n" text "${text}")
  else()
    string(REGEX REPLACE "(^|\n)([A-Z][A-Za-z ]*):[ ]*\n" "\\1.fi\n.SS \"\\2\"\n.nf\n" text "${text}")
  endif()
  set(${out_var} ".nf\n${text}\n.fi\n" PARENT_SCOPE)
endfunction()

# The subcommand names a CLI11 help lists under "Subcommands:".
function(dfs_subcommands out_var text)
  set(names "")
  string(FIND "${text}" "\nSubcommands:\n" at)
  if(at GREATER -1)
    string(SUBSTRING "${text}" ${at} -1 section)
    string(REGEX MATCHALL "\n  [a-z][-a-z0-9]*" lines "${section}")
    foreach(line ${lines})
      string(STRIP "${line}" line)
      list(APPEND names "${line}")
    endforeach()
  endif()
  set(${out_var} "${names}" PARENT_SCOPE)
endfunction()

dfs_help(top)
# The first line of the help is the one-line description ("dforce — ...") when it has one.
string(REGEX MATCH "^[^\n]*" first_line "${top}")
string(REGEX REPLACE "^[^ ]+ (—|-) " "" summary "${first_line}")
if(summary STREQUAL first_line OR first_line MATCHES "^Usage")
  set(summary "${DESCRIPTION}")
endif()
string(REPLACE "-" "\\-" summary "${summary}")
string(TOUPPER "${NAME}" upper)
string(TIMESTAMP today "%Y-%m-%d" UTC)  # honours $SOURCE_DATE_EPOCH

dfs_roff(body "${top}" OFF)
set(page ".\\\" Generated from '${NAME} --help' by cmake/DfsManPage.cmake; do not edit.\n")
string(APPEND page ".TH ${upper} 1 \"${today}\" \"${NAME} ${VERSION}\" \"User Commands\"\n")
string(APPEND page ".SH NAME\n${NAME} \\- ${summary}\n")
string(APPEND page ".SH DESCRIPTION\n${body}")

if(SUBCOMMANDS)
  dfs_subcommands(subs "${top}")
  if(subs)
    string(APPEND page ".SH COMMANDS\n")
    foreach(sub ${subs})
      dfs_help(sub_text ${sub})
      dfs_roff(sub_body "${sub_text}" ON)
      string(APPEND page ".SS \"${NAME} ${sub}\"\n${sub_body}")
      dfs_subcommands(subsubs "${sub_text}")
      foreach(subsub ${subsubs})
        dfs_help(subsub_text ${sub} ${subsub})
        dfs_roff(subsub_body "${subsub_text}" ON)
        string(APPEND page ".SS \"${NAME} ${sub} ${subsub}\"\n${subsub_body}")
      endforeach()
    endforeach()
  endif()
endif()

string(APPEND page ".SH ENVIRONMENT\n.TP\n.B DFS_THREADS\nIntra\\-op threads when no option sets them.\n")
string(APPEND page ".SH SEE ALSO\n")
if(NAME STREQUAL "dforce")
  string(APPEND page ".BR dfstudio (1)\n")
else()
  string(APPEND page ".BR dforce (1)\n")
endif()

get_filename_component(out_dir "${OUT}" DIRECTORY)
string(REGEX REPLACE "\\.gz$" "" plain "${OUT}")
file(WRITE "${plain}" "${page}")
find_program(GZIP gzip REQUIRED)
execute_process(COMMAND ${GZIP} -9 -n -f "${plain}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "DfsManPage.cmake: gzip ${plain} failed")
endif()

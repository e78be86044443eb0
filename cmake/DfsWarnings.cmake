# dfs_set_warnings(target): the project's warning level; errors with DFS_WERROR (CI).
function(dfs_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(DFS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# dfs_use_torch_pch(target): reuse one precompiled torch/torch.h (~20 s saved per TU).
function(dfs_use_torch_pch target)
  if(NOT DFS_USE_PCH)
    return()
  endif()
  if(TARGET dfs_torch_pch)
    target_precompile_headers(${target} REUSE_FROM dfs_torch_pch)
  endif()
endfunction()

# Same, for targets that may not exist (a test suite with no sources yet).
function(dfs_use_torch_pch_if_exists target)
  if(TARGET ${target})
    dfs_use_torch_pch(${target})
  endif()
endfunction()

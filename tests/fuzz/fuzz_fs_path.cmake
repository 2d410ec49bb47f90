# fuzz_fs_path: mqfs's name/path grammar and line assembly (fs/path.c, fs/lines.c). Included from
# tests/fuzz/CMakeLists.txt; seeds in tests/fuzz/corpus/fuzz_fs_path/.
add_executable(fuzz_fs_path ${CMAKE_CURRENT_LIST_DIR}/fuzz_fs_path.c
                            ${CMAKE_SOURCE_DIR}/fs/path.c ${CMAKE_SOURCE_DIR}/fs/lines.c)
target_compile_options(fuzz_fs_path PRIVATE -fsanitize=fuzzer,address,undefined -g)
target_link_options(fuzz_fs_path PRIVATE -fsanitize=fuzzer,address,undefined)
target_link_libraries(fuzz_fs_path PRIVATE mq_common)

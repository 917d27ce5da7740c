# embed.cmake - turn a text file into a C string constant (config_embedded_default).
# Usage: cmake -DIN=file -DOUT=file.c -P embed.cmake
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "/* generated from conf/postern.conf by tools/embed.cmake - do not edit */\n")
file(APPEND ${OUT} "const char config_embedded_default[] = {${bytes} 0x00};\n")

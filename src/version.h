#ifndef BORE_VERSION_H
#define BORE_VERSION_H
#define BORE_VERSION "0.1.0"
#endif

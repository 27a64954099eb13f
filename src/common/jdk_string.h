#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wxcanary {

/// The bytes java.io.ObjectOutputStream.writeObject(String) writes: the stream header
/// AC ED 00 05, then TC_STRING (0x74) with a u16 length, or TC_LONGSTRING (0x7C) with a u64
/// length past 65535 bytes, then the string in Java's modified UTF-8. This is what Spring's
/// RedisTemplate stores (keys and values) with its default JdkSerializationRedisSerializer.
/// `utf8` is ordinary UTF-8. Pure; thread-safe.
std::string JdkSerializeString(std::string_view utf8);

/// Why JdkDeserializeString refused: the value is not a JDK stream, is one holding some other
/// object (a Map, a bean), or is a String stream that is cut short / has trailing bytes.
enum class JdkDecodeError { kNotJdk, kNotAString, kMalformed };

/// The inverse of JdkSerializeString for exactly one String object, as ordinary UTF-8.
/// Sets *why on failure. Pure; thread-safe.
std::optional<std::string> JdkDeserializeString(std::string_view bytes, JdkDecodeError* why);

/// True when `bytes` starts with the JDK serialization stream header AC ED 00 05.
bool LooksJdkSerialized(std::string_view bytes);

}  // namespace wxcanary

// Prints, as lowercase hex, the bytes ObjectOutputStream.writeObject(s) produces for each
// argument: what Spring's JdkSerializationRedisSerializer (RedisTemplate's default) stores.
// `java JdkBytes.java <string>...` (Java 11+ runs a single source file); "--long" stands for a
// 70000-char ASCII string, which the JDK writes as TC_LONGSTRING.
import java.io.ByteArrayOutputStream;
import java.io.ObjectOutputStream;

public class JdkBytes {
  public static void main(String[] args) throws Exception {
    for (String a : args) {
      String s = a.equals("--long") ? "L".repeat(70000) : a;
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
        out.writeObject(s);
      }
      StringBuilder hex = new StringBuilder();
      for (byte b : bytes.toByteArray()) hex.append(String.format("%02x", b));
      System.out.println(a.equals("--long") ? hex.substring(0, 40) + "... (" + bytes.size() + " bytes)" : hex);
    }
  }
}
